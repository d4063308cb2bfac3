"""`tthc validate FILE...`: the files read — Biểu 06 workbooks through the spreadsheet
extractor, canonical CSV here — and their rows handed to validations/offline.py, which
validates them; the findings printed as text or JSON."""
from __future__ import annotations

import csv
import json
import re
from datetime import date, datetime
from pathlib import Path

from tthc.checks import CHECKS
from tthc.config import Settings
from tthc.findings import Finding
from tthc.form import FIGURE_LABELS, FIGURES
from tthc.numbers import NotACount, parse_count
from validations.offline import as_json, as_text, validate_rows

KEY_COLUMNS = ("unit_code", "period_start", "period_end")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


class UnreadableFile(Exception):
    """The file cannot be read as a Biểu 06 workbook or a canonical CSV; the message says why."""


def parse_date(text: str) -> date:
    text = (text or "").strip()
    if m := _DMY.match(text):
        return date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
    return datetime.strptime(text[:10], "%Y-%m-%d").date()


def read_csv(path: Path) -> tuple[list[dict], list[Finding]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in KEY_COLUMNS if c not in header]
            if missing:
                raise UnreadableFile(f"{path.name}: thiếu cột {', '.join(missing)} (cần {', '.join(KEY_COLUMNS)}, "
                                     "field_code và các cột số liệu)")
            records = [{(k or "").strip(): v for k, v in rec.items()} for rec in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"{path.name}: không đọc được tệp: {exc}") from None
    rows, findings = [], []
    for line, rec in enumerate(records, start=2):
        where = f"{path.name}, dòng {line}"
        row = {"unit_code": (rec.get("unit_code") or "").strip() or None,
               "field_code": (rec.get("field_code") or "").strip(), "source_id": path.name,
               "basis": "self_reported", "landed_file": path.name, "row": line}
        try:
            row["period_start"], row["period_end"] = parse_date(rec["period_start"]), parse_date(rec["period_end"])
        except (ValueError, TypeError):
            findings.append(Finding("period.convention", "critical",
                                    f"{where}: ngày đầu hoặc ngày cuối kỳ không đọc được: "
                                    f"{rec.get('period_start')!r}, {rec.get('period_end')!r}",
                                    unit_code=row["unit_code"], field_code=row["field_code"], source_id=path.name,
                                    columns=["period_start", "period_end"], location=where))
            continue
        for name in FIGURES:
            try:
                row[name] = parse_count(rec.get(name))
            except NotACount as exc:
                row[name] = None
                findings.append(_unreadable(name, str(exc), row, where))
        rows.append(row)
    return rows, findings


def read_xlsx(path: Path, settings: Settings) -> tuple[list[dict], list[Finding]]:
    from extractors.spreadsheet import LayoutError, field_codes_by_name, read_workbook

    try:
        landed, errors, *notes = read_workbook(path, field_codes_by_name(settings))
    except (LayoutError, OSError) as exc:
        raise UnreadableFile(f"{path.name}: {exc}") from None
    rows = []
    for rec in landed:
        rows.append({**{k: rec[k] for k in ("unit_code", "period_start", "period_end", *FIGURES)},
                     "field_code": rec["field_code"] or "", "source_id": path.name, "basis": "self_reported",
                     "landed_file": f"{path.name}, {rec['sheet']}", "row": rec["row"], "is_total": rec["is_total"]})
    findings = []
    for error in errors:
        findings.append(Finding("schema.count_unreadable", "critical", f"{error.where()}: {error.message}",
                                unit_code=error.unit_code, source_id=path.name, location=error.where()))
    for note in (notes[0] if notes else []):
        findings.append(Finding("schema.layout_note", "warning", f"{note.where()}: {note.message}",
                                unit_code=note.unit_code, source_id=path.name, location=note.where()))
    return rows, findings


def _unreadable(name: str, why: str, row: dict, where: str) -> Finding:
    check = CHECKS["schema.count_unreadable"]
    return Finding(check.id, check.severity, f"{where}: {check.title}: {FIGURE_LABELS[name]}: {why}",
                   row.get("period_start"), row.get("period_end"), source_id=row["source_id"], unit_code=row["unit_code"],
                   field_code=row["field_code"], basis="self_reported", columns=[name], location=where)


def validate_files(paths: list[Path], settings: Settings) -> tuple[list[Finding], dict, list[str]]:
    """Findings on every readable file, the diagnosis per row, and the errors of unreadable files."""
    from tthc.units import units_for_province

    rows, findings, unreadable = [], [], []
    for path in paths:
        try:
            if not path.is_file():
                raise UnreadableFile(f"{path}: không có tệp này")
            read = read_xlsx(path, settings) if path.suffix.lower() in (".xlsx", ".xlsm") else read_csv(path)
        except UnreadableFile as exc:
            unreadable.append(str(exc))
            continue
        rows += read[0]
        findings += read[1]
    if not rows:
        return findings, {}, unreadable
    found, by_row = validate_rows(rows, units_for_province(settings), [f["code"] for f in settings.fields],
                                  settings.period_convention)
    return findings + found, by_row, unreadable


def main(paths: list[str], output_format: str, settings: Settings) -> int:
    import sys

    findings, diagnoses, unreadable = validate_files([Path(p) for p in paths], settings)
    for error in unreadable:
        print(f"không đọc được: {error}", file=sys.stderr)
    if output_format == "json":
        print(json.dumps(as_json(findings, diagnoses), ensure_ascii=False, indent=1, default=str))
    else:
        print(as_text(findings))
    if unreadable:
        return 2
    return 1 if any(f.severity == "critical" for f in findings) else 0
