"""`tthc validate FILE...`: Biểu 06 workbooks or canonical CSV validated offline, without a
warehouse: the same suites and diagnosis as a run, on the figures in the files."""
from __future__ import annotations

import csv
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from tthc.config import Settings
from tthc.findings import Finding
from tthc.form import FIGURES
from tthc.numbers import NotACount, parse_count
from tthc.checks import CHECKS
from tthc.form import FIGURE_LABELS
from validations.bieu06_rows import RollupGroup, bieu06_suite, diagnosis_findings, prepare_rows, rollup_findings, \
    row_findings
from validations.gx import GxSession

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
    units = units_for_province(settings)
    frame = pd.DataFrame(rows)
    frame = _with_previous_pending(frame)

    validity: dict[str, list[tuple[date, date]]] = {}
    for code, start, end in zip(units["unit_code"], units["valid_from"], units["valid_to"]):
        validity.setdefault(code, []).append((start, end))

    def in_force(code, end) -> bool:
        return any(s <= end <= e for s, e in validity.get(code, [])) if end is not None else code in validity

    frame = prepare_rows(frame, unit_in_force=in_force, field_codes=[f["code"] for f in settings.fields],
                         convention=settings.period_convention)
    session = GxSession()
    findings += row_findings(frame, session.validate(frame, bieu06_suite("bieu06_canonical", unique_keys=True)), None)
    diagnosed, diagnoses = diagnosis_findings(frame, None)
    findings += diagnosed
    findings += rollup_findings(_rollups(frame, units), None)
    by_row = {}
    for row_id, diagnosis in diagnoses.items():
        row = frame.iloc[row_id]
        by_row[(row["source_id"], row["unit_code"], row["field_code"], row["period_start"])] = diagnosis
    return findings, by_row, unreadable


def _with_previous_pending(frame: pd.DataFrame) -> pd.DataFrame:
    """carried_over can be checked where the files hold the unit's previous period too."""
    pending = {(u, f, e): p for u, f, e, p in zip(frame["unit_code"], frame["field_code"], frame["period_end"],
                                                  frame["pending_total"]) if p is not None and not pd.isna(p)}
    frame["previous_pending_total"] = [
        pending.get((u, f, s - timedelta(days=1))) if s is not None else None
        for u, f, s in zip(frame["unit_code"], frame["field_code"], frame["period_start"])]
    frame["previous_pending_total"] = pd.to_numeric(frame["previous_pending_total"], errors="coerce")
    return frame


def _rollups(frame: pd.DataFrame, units: pd.DataFrame) -> list[RollupGroup]:
    """A unit's total row (no field) against its field rows; a parent unit's rows against its
    units' rows for the same period and field, where both are in the files."""
    groups = []
    is_total = frame["field_code"].fillna("") == ""
    for (source, unit, start), members in frame.groupby(["source_id", "unit_code", "period_start"], dropna=False):
        totals = members[is_total.loc[members.index]]
        parts = members[~is_total.loc[members.index]]
        if len(parts):
            groups += [RollupGroup(row, parts, True, "rollup.total_row") for _, row in totals.iterrows()]
    children: dict[str, set[str]] = {}
    for code, parent, start, end in zip(units["unit_code"], units["parent_code"], units["valid_from"], units["valid_to"]):
        if parent:
            children.setdefault(parent, set()).add(code)
    for (start, end, field), members in frame.groupby(["period_start", "period_end", "field_code"], dropna=False):
        present = set(members["unit_code"])
        for _, parent in members[members["unit_code"].isin(children)].iterrows():
            in_force = {c for c in children[parent["unit_code"]]
                        if any((u.valid_from <= end <= u.valid_to) for u in units[units["unit_code"] == c].itertuples())}
            reported = members[members["unit_code"].isin(in_force)]
            if len(reported):
                groups.append(RollupGroup(parent, reported, in_force <= present, "rollup.units"))
    return groups


def as_json(findings: list[Finding], diagnoses: dict) -> list[dict]:
    out = []
    for f in findings:
        diagnosis = diagnoses.get((f.source_id, f.unit_code, f.field_code, f.period_start)) \
            if f.check_id.startswith(("identity.", "diagnosis.")) and f.check_id not in (
                "identity.unchecked", "identity.balance_approximate") else None
        out.append({
            "unit_code": f.unit_code, "period_start": _iso(f.period_start), "period_end": _iso(f.period_end),
            "field_code": f.field_code or None, "check": f.check_id, "severity": f.severity, "message": f.message,
            "columns": f.columns, "observed": _json(f.observed), "expected": _json(f.expected),
            "suggested_fix": f.suggested_fix, "candidates": diagnosis.ranked() if diagnosis else [],
            "ambiguous": bool(diagnosis and diagnosis.ambiguous), "file": f.source_id, "location": f.location,
        })
    return out


def as_text(findings: list[Finding]) -> str:
    lines = []
    for f in sorted(findings, key=lambda f: ({"critical": 0, "warning": 1, "info": 2}[f.severity], f.unit_code or "")):
        fix = ""
        if f.suggested_fix:
            fix = " → đề xuất: " + ", ".join(f"{k} = {v}" for k, v in f.suggested_fix.items())
        lines.append(f"[{f.severity}] {f.check_id} {f.location or f.source_id or ''}: {f.message}{fix}")
    counts = {s: sum(f.severity == s for f in findings) for s in ("critical", "warning", "info")}
    lines.append(f"Tổng: {counts['critical']} nghiêm trọng, {counts['warning']} cảnh báo, {counts['info']} thông tin")
    return "\n".join(lines)


def _iso(value) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).date().isoformat()


def _json(text: str | None):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


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
