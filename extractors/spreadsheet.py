"""Commune Biểu 06 workbooks filled by hand.

The layout is found, not assumed at fixed cells: the column-number row "(1) … (14)" anchors
the figures, the title lines give the period and the unit. A cell that cannot be read is an
error naming the file, sheet, row and column, and the figure stays unknown; a workbook whose
layout is not recognised is refused whole and goes to quarantine.
"""
from __future__ import annotations

import re
import shutil
import unicodedata
import zipfile
from datetime import date
from pathlib import Path

import pyarrow as pa
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from extractors.base import ExtractError, Manifest, ParquetLanding, now_utc
from tthc.config import Settings, Source, repo_path
from tthc.model import FIGURES
from tthc.numbers import NotACount, parse_count
from tthc.periods import Period

# form column number → canonical figure: (3) … (13), then (14) returned/withdrawn
FIGURE_BY_COLUMN_NUMBER = {number: name for number, name in enumerate(FIGURES, start=3)}
_PERIOD_LINE = re.compile(r"từ ngày\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*đến ngày\s*(\d{1,2})/(\d{1,2})/(\d{4})", re.I)
_UNIT_LINE = re.compile(r"mã\s*(?:đvhc|đơn vị)\s*:\s*([0-9A-Za-z.]+)", re.I)
_UNIT_IN_NAME = re.compile(r"Bieu06_([0-9A-Za-z.]+)", re.I)
_COLUMN_NUMBER = re.compile(r"^\(?\s*(\d{1,2})\s*\)?$")
_TOTAL_LABELS = ("tổng cộng", "tổng số", "cộng")
_END_LABELS = ("ghi chú", "người lập biểu", "chủ tịch", "thủ trưởng")
MAX_FILE_BYTES = 20 * 1024 * 1024

LANDING_SCHEMA = pa.schema(
    [pa.field("file", pa.string()), pa.field("sheet", pa.string()), pa.field("row", pa.int32()),
     pa.field("unit_code", pa.string()), pa.field("period_start", pa.date32()), pa.field("period_end", pa.date32()),
     pa.field("field_code", pa.string()), pa.field("field_name", pa.string()), pa.field("is_total", pa.bool_()),
     *[pa.field(name, pa.int64()) for name in FIGURES]]
)


class LayoutError(ValueError):
    """The workbook is not a Biểu 06 this extractor can read; the message says what was expected."""


def normalise(text) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(text or ""))).strip().lower()


def read_workbook(path: Path, field_codes: dict[str, str]) -> tuple[list[dict], list[ExtractError]]:
    """Rows of one workbook (one per field, plus its total row) and the cell errors found."""
    if path.stat().st_size == 0:
        raise LayoutError("the file is empty")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LayoutError(f"the file is {path.stat().st_size} bytes, more than the {MAX_FILE_BYTES} a Biểu 06 can be")
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise LayoutError("not an .xlsx workbook (not a zip archive)") from None
    if unpacked > 20 * MAX_FILE_BYTES:
        raise LayoutError(f"the workbook unpacks to {unpacked} bytes: refused as a possible zip bomb")
    try:
        workbook = load_workbook(path, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for damaged files
        raise LayoutError(f"the workbook cannot be opened: {type(exc).__name__}: {exc}") from None
    rows: list[dict] = []
    errors: list[ExtractError] = []
    found_sheet = False
    for sheet in workbook.worksheets:
        header_row, columns = _find_column_numbers(sheet)
        if header_row is None:
            continue
        found_sheet = True
        period_start, period_end, unit_code = _read_title(sheet, header_row, path)
        rows_before = len(rows)
        for r in range(header_row + 1, sheet.max_row + 1):
            label = sheet.cell(r, columns[2]).value
            first = normalise(sheet.cell(r, columns.get(1, 1)).value)
            label_text = normalise(label)
            if any(label_text.startswith(x) or first.startswith(x) for x in _END_LABELS):
                break
            values = {n: sheet.cell(r, c).value for n, c in columns.items() if n >= 3}
            if not label_text and all(v in (None, "") for v in values.values()):
                continue
            is_total = label_text in _TOTAL_LABELS
            field_code = None if is_total else field_codes.get(label_text)
            if not is_total and field_code is None:
                errors.append(ExtractError(
                    f"unknown field of work {label!r}: expected one of the fields in config/province.yaml",
                    path.name, sheet.title, r, get_column_letter(columns[2]), unit_code))
                continue
            row = {"file": path.name, "sheet": sheet.title, "row": r, "unit_code": unit_code,
                   "period_start": period_start, "period_end": period_end, "field_code": field_code,
                   "field_name": str(label).strip() if label is not None else None, "is_total": is_total}
            for number, name in FIGURE_BY_COLUMN_NUMBER.items():
                if number not in columns:
                    row[name] = None
                    continue
                try:
                    row[name] = parse_count(values[number])
                except NotACount as exc:
                    row[name] = None
                    errors.append(ExtractError(f"{name}: {exc}", path.name, sheet.title, r,
                                               get_column_letter(columns[number]), unit_code))
            rows.append(row)
        if len(rows) == rows_before:
            raise LayoutError(f"sheet {sheet.title!r}: no field rows below the column-number row {header_row}")
    if not found_sheet:
        raise LayoutError("no sheet has the Biểu 06 column-number row '(1) (2) … (13)'")
    return rows, errors


def _find_column_numbers(sheet) -> tuple[int | None, dict[int, int]]:
    for r in range(1, min(sheet.max_row, 40) + 1):
        numbers: dict[int, int] = {}
        for c in range(1, min(sheet.max_column, 40) + 1):
            value = sheet.cell(r, c).value
            match = _COLUMN_NUMBER.match(str(value).strip()) if value is not None else None
            if match and isinstance(value, str):
                numbers[int(match.group(1))] = c
        if all(n in numbers for n in range(1, 14)):
            return r, numbers
    return None, {}


def _read_title(sheet, header_row: int, path: Path) -> tuple[date, date, str]:
    period = unit = None
    for r in range(1, header_row):
        for c in range(1, min(sheet.max_column, 20) + 1):
            value = sheet.cell(r, c).value
            if not isinstance(value, str):
                continue
            if period is None and (m := _PERIOD_LINE.search(value)):
                d1, m1, y1, d2, m2, y2 = map(int, m.groups())
                try:
                    period = (date(y1, m1, d1), date(y2, m2, d2))
                except ValueError:
                    raise LayoutError(f"sheet {sheet.title!r} row {r}: the period line has an impossible date: {value!r}") from None
            if unit is None and (m := _UNIT_LINE.search(value)):
                unit = m.group(1)
    if unit is None and (m := _UNIT_IN_NAME.search(path.stem)):
        unit = m.group(1)
    if period is None:
        raise LayoutError(f"sheet {sheet.title!r}: no period line 'Từ ngày dd/mm/yyyy đến ngày dd/mm/yyyy' above row {header_row}")
    if unit is None:
        raise LayoutError(f"sheet {sheet.title!r}: no unit code ('mã ĐVHC: …' in the title lines or Bieu06_<code> in the file name)")
    return period[0], period[1], unit


def field_codes_by_name(settings: Settings) -> dict[str, str]:
    return {normalise(f["name"]): f["code"] for f in settings.fields}


def quarantine(path: Path, quarantine_dir: Path, reason: str) -> str:
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = quarantine_dir / path.name
    shutil.copy2(path, target)
    (quarantine_dir / f"{path.name}.reason.txt").write_text(reason + "\n", encoding="utf-8")
    return str(target)


def extract(source: Source, period: Period, folder: Path, run_id: str, settings: Settings, quarantine_dir: Path) -> Manifest:
    import os

    base = repo_path(os.environ.get(f"TTHC_SOURCE_{source.id.upper()}_PATH") or source.spec["path"])
    inbox = base / period.label
    codes = field_codes_by_name(settings)
    landing = ParquetLanding(folder / "figures.parquet", LANDING_SCHEMA)
    errors: list[ExtractError] = []
    files = sorted(p for p in inbox.glob("*") if p.is_file() and not p.name.startswith((".", "~$"))) if inbox.is_dir() else []
    read = 0
    for path in files:
        try:
            if path.suffix.lower() != ".xlsx":
                raise LayoutError(f"unsupported file type {path.suffix!r}: expected a .xlsx Biểu 06 workbook")
            rows, cell_errors = read_workbook(path, codes)
            mismatched = {(r["period_start"], r["period_end"]) for r in rows} - {(period.start, period.end)}
            if mismatched:
                start, end = next(iter(mismatched))
                raise LayoutError(
                    f"the workbook reports {start:%d/%m/%Y} – {end:%d/%m/%Y}, expected {period.label} "
                    f"({period.start:%d/%m/%Y} – {period.end:%d/%m/%Y})")
        except LayoutError as exc:
            message = f"{path.name}: {exc}"
            errors.append(ExtractError(message, path.name, quarantined=quarantine(path, quarantine_dir, message)))
            continue
        read += 1
        errors.extend(cell_errors)
        landing.write({name: [r[name] for r in rows] for name in LANDING_SCHEMA.names})
    file_info = landing.close()
    return Manifest(
        source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok", extracted_at=now_utc(),
        run_id=run_id, files=[file_info], rows=file_info["rows"],
        errors=[{**e.__dict__, "where": e.where()} for e in errors],
        stats={"files_found": len(files), "files_read": read, "inbox": str(inbox)},
    )
