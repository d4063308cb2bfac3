"""Commune Biểu 06 workbooks filled by hand, as .xlsx or .csv.

The layout is found, not assumed at fixed cells: the column-number row "(1) … (14)" anchors
the figures, the header above it (merged cells resolved) must not contradict what each
numbered column means, the title lines (or the file name) give the period and the unit.
Formulas are read through their cached values; a cached value that disagrees with its
inputs, and a total typed where the form has a formula that disagrees with it, are warnings
naming the cell. A cell that cannot be read is an error naming the file, sheet, row and
column, and the figure stays unknown; a workbook whose layout is not recognised is refused
whole and goes to quarantine.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import pyarrow as pa
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum
from openpyxl.utils import column_index_from_string, get_column_letter

from extractors.base import ExtractError, ExtractJob, SourceUnavailable, finish
from extractors.quarantine import quarantine_file
from tthc.config import Settings, Source, repo_path
from tthc.checks import CHECKS
from tthc.findings import Finding
from tthc.form import COLUMN_NUMBER, FIGURE_BY_COLUMN_NUMBER, FIGURES, OPTIONAL_FIGURES, REPORTED_FIGURES, SUM_IDENTITIES
from tthc.landing import SELF_REPORTED, Manifest, ParquetLanding
from tthc.numbers import READINGS, ApproximateCount, NotACount, parse_count, read_count, reading_en
from tthc.periods import Period

KIND = "spreadsheet"
BASIS = SELF_REPORTED
KEY = None  # figures, not records: no incremental merge
LANDED_FILE = "figures.parquet"
SUFFIXES = (".xlsx", ".xlsm", ".csv")
_PERIOD_LINE = re.compile(r"từ ngày\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*đến ngày\s*(\d{1,2})/(\d{1,2})/(\d{4})", re.I)
_QUARTER_LINE = re.compile(r"quý\s+(iv|i{1,3}|[1-4])\s*(?:/|năm)\s*(\d{4})", re.I)
_QUARTER_IN_NAME = re.compile(r"(?:(\d{4})[-_ .]?q([1-4])|q([1-4])[-_ .]?(\d{4}))", re.I)
_UNIT_LINE = re.compile(r"mã\s*(?:đvhc|đơn vị)\s*:\s*([0-9A-Za-z.]+)", re.I)
_UNIT_IN_NAME = re.compile(r"Bieu06_([0-9A-Za-z.]*[0-9][0-9A-Za-z.]*?)(?=[_ -]|$)", re.I)
_COLUMN_NUMBER = re.compile(r"^\(?\s*(\d{1,2})\s*\)?$")
_GROUP_NUMBER = re.compile(r"^(?:[IVX]+|[A-Z])\.?$")
_REF = re.compile(r"^\$?([A-Z]{1,3})\$?(\d+)$")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4}
_TOTAL_LABELS = ("tổng cộng", "tổng số", "cộng")
_END_LABELS = ("ghi chú", "người lập biểu", "chủ tịch", "thủ trưởng")
MAX_FILE_BYTES = 20 * 1024 * 1024  # registry option max_file_bytes
MAX_UNPACKED_BYTES = 200 * 1024 * 1024  # registry option max_unpacked_bytes: what an .xlsx may declare it unpacks to
MAX_RATIO = 100  # a workbook part compressed more than this (and over 1 MB unpacked) is a zip bomb
# a formula that reads another workbook: ='[1]Sheet1'!C5, ='C:\x\[book.xlsx]Sheet1'!C5, =[book.xlsx]Sheet1!C5
_EXTERNAL_REF = re.compile(r"\[[^\]]+\][^!]*!")

# What the header above each numbered column may say (domain.md §3); a header that names
# another group or another part is a different layout.
_GROUPS = {"received": ("nhận",), "resolved": ("đã giải quyết",), "pending": ("đang giải quyết",),
           "returned": ("trả lại", "rút", "dừng")}
_PARTS = {"total": ("tổng số",), "online": ("trực tuyến",), "direct": ("trực tiếp", "bưu chính"),
          "carried": ("kỳ trước",), "early": ("trước hạn",), "on_time": ("đúng hạn",), "late": ("quá hạn",),
          "within": ("trong hạn",)}
_EXPECTED_HEADER = {
    3: ("received", "total", "Số hồ sơ nhận giải quyết – Tổng số"),
    4: ("received", "online", "Số hồ sơ nhận giải quyết – Trực tuyến"),
    5: ("received", "direct", "Số hồ sơ nhận giải quyết – Trực tiếp, dịch vụ bưu chính"),
    6: ("received", "carried", "Số hồ sơ nhận giải quyết – Từ kỳ trước"),
    7: ("resolved", "total", "Số hồ sơ đã giải quyết – Tổng số"),
    8: ("resolved", "early", "Số hồ sơ đã giải quyết – Trước hạn"),
    9: ("resolved", "on_time", "Số hồ sơ đã giải quyết – Đúng hạn"),
    10: ("resolved", "late", "Số hồ sơ đã giải quyết – Quá hạn"),
    11: ("pending", "total", "Số hồ sơ đang giải quyết – Tổng số"),
    12: ("pending", "within", "Số hồ sơ đang giải quyết – Trong hạn"),
    13: ("pending", "late", "Số hồ sơ đang giải quyết – Quá hạn"),
    14: ("returned", None, "Số hồ sơ trả lại, rút, dừng xử lý"),
}

# Columns numbered after (14) that real reports add, known by what their header says (issue 17):
# the first figure whose words are all in the header; read by `tthc validate`, not landed.
_OPTIONAL_HEADERS = (
    ("resolved_early_on_time", ("trước hạn", "đúng")),
    ("resolved_early_on_time", ("sớm", "đúng")),
    ("received_new", ("tiếp nhận mới",)),
    ("received_new", ("nhận mới",)),
    ("received_new", ("mới tiếp nhận",)),
    ("pending_paused", ("chờ bổ sung",)),
    ("refused", ("từ chối",)),
    ("received_postal", ("bưu chính",)),
    ("received_direct", ("trực tiếp",)),
)
assert {name for name, _ in _OPTIONAL_HEADERS} == set(OPTIONAL_FIGURES)

LANDING_SCHEMA = pa.schema(
    [pa.field("file", pa.string()), pa.field("sheet", pa.string()), pa.field("row", pa.int32()),
     pa.field("unit_code", pa.string()), pa.field("period_start", pa.date32()), pa.field("period_end", pa.date32()),
     pa.field("field_code", pa.string()), pa.field("field_name", pa.string()), pa.field("is_total", pa.bool_()),
     *[pa.field(name, pa.int64()) for name in FIGURES]]
)


class LayoutError(ValueError):
    """The workbook is not a Biểu 06 this extractor can read; the message says what was expected."""


@dataclass
class Sheet:
    """One sheet as values (cached values for formulas), its formulas and merged ranges."""

    title: str
    cells: dict[tuple[int, int], object]
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # min_row, min_col, max_row, max_col
    hidden: bool = False

    @property
    def max_row(self) -> int:
        return max((r for r, _ in self.cells), default=0)

    @property
    def max_column(self) -> int:
        return max((c for _, c in self.cells), default=0)

    def value(self, r: int, c: int):
        return self.cells.get((r, c))

    def shown(self, r: int, c: int):
        """The value a reader sees in the cell: a merged range shows its first cell's value."""
        for r1, c1, r2, c2 in self.merged:
            if r1 <= r <= r2 and c1 <= c <= c2:
                return self.cells.get((r1, c1))
        return self.cells.get((r, c))


def normalise(text) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", str(text or ""))).strip().lower()


@dataclass(frozen=True)
class Limits:
    """How big an input may be before it is refused unread (registry options of the source)."""

    max_file_bytes: int = MAX_FILE_BYTES
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES
    max_ratio: float = MAX_RATIO

    @classmethod
    def from_spec(cls, spec: dict) -> "Limits":
        return cls(**{k: type(getattr(cls, k))(spec[k]) for k in cls.__dataclass_fields__ if spec.get(k) is not None})


def load_sheets(path: Path, limits: Limits = Limits()) -> list[Sheet]:
    """The sheets of a .xlsx or .csv file; LayoutError when it cannot be read as one."""
    size = path.stat().st_size
    if size == 0:
        raise LayoutError("the file is empty")
    if size > limits.max_file_bytes:
        raise LayoutError(f"the file is {size} bytes, more than the {limits.max_file_bytes} a Biểu 06 can be "
                          f"(registry option max_file_bytes): not read")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return [_csv_sheet(path)]
    if suffix not in SUFFIXES:
        raise LayoutError(f"unsupported file type {path.suffix!r}: expected a .xlsx or .csv Biểu 06")
    return _xlsx_sheets(path, limits)


def check_zip(path: Path, limits: Limits = Limits()) -> None:
    """Refuse a zip bomb from the archive's directory alone, before any part is inflated: the
    sizes the members declare, and how much each claims to expand."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise LayoutError(f"not an .xlsx workbook (not a zip archive: {exc})") from None
    unpacked = sum(info.file_size for info in members)
    if unpacked > limits.max_unpacked_bytes:
        raise LayoutError(f"the workbook declares it unpacks to {unpacked} bytes ({len(members)} parts), more than "
                          f"{limits.max_unpacked_bytes} (registry option max_unpacked_bytes): refused as a zip bomb, "
                          f"not unpacked")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > limits.max_ratio:
            raise LayoutError(f"part {info.filename!r} expands {ratio:.0f} times ({info.compress_size} → "
                              f"{info.file_size} bytes), more than {limits.max_ratio:g} (registry option max_ratio): "
                              f"refused as a zip bomb, not unpacked")


def _xlsx_sheets(path: Path, limits: Limits = Limits()) -> list[Sheet]:
    check_zip(path, limits)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        formulas = load_workbook(path, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - both readers raise many types for damaged files
        raise LayoutError(f"the workbook cannot be opened: {type(exc).__name__}: {exc}") from None
    sheets = []
    try:
        for meta in workbook.sheets_metadata:
            if meta.typ != SheetTypeEnum.WorkSheet:
                continue
            ws = workbook.get_sheet_by_name(meta.name)
            cells = {(r, c): value
                     for r, row in enumerate(ws.to_python(skip_empty_area=False), start=1)
                     for c, value in enumerate(row, start=1) if value not in (None, "")}
            typed = {(cell.row, cell.column): cell.value for row in formulas[meta.name].iter_rows()
                     for cell in row if getattr(cell, "data_type", None) == "f" and isinstance(cell.value, str)}
            merged = [(r1 + 1, c1 + 1, r2 + 1, c2 + 1) for (r1, c1), (r2, c2) in (ws.merged_cell_ranges or [])]
            sheets.append(Sheet(meta.name, cells, typed, merged, meta.visible != SheetVisibleEnum.Visible))
    except Exception as exc:  # noqa: BLE001
        raise LayoutError(f"the workbook cannot be read: {type(exc).__name__}: {exc}") from None
    finally:
        formulas.close()
    return sheets


def decode_csv(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM (Excel's "Unicode text"), else
    Windows-1258; anything else is refused with the offending byte's offset."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LayoutError(f"the CSV starts with a UTF-16 byte-order mark but is not UTF-16: {exc.reason} "
                              f"at byte {exc.start}") from None
    if b"\x00" in raw[:65536]:
        at = raw.index(b"\x00")
        guess = "UTF-16 without a byte-order mark" if raw[1:200:2].count(0) > 40 or raw[0:200:2].count(0) > 40 \
            else "a binary file"
        raise LayoutError(f"the CSV has NUL bytes (first at byte {at}): it looks like {guess}; expected text in "
                          f"UTF-8 or Windows-1258 (save it as 'CSV UTF-8')")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as utf8:
        try:
            return raw.decode("cp1258")  # Excel on Vietnamese Windows; NFC normalisation handles its combining marks
        except UnicodeDecodeError as exc:
            raise LayoutError(
                f"the CSV is neither UTF-8 (byte 0x{raw[utf8.start]:02x} at {utf8.start}) nor Windows-1258 "
                f"(byte 0x{raw[exc.start]:02x} at {exc.start} is not a character there): save it as 'CSV UTF-8'"
            ) from None


def _csv_sheet(path: Path) -> Sheet:
    text = decode_csv(path.read_bytes())
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    cells = {}
    r = 1
    try:
        for r, row in enumerate(csv.reader(io.StringIO(text), dialect), start=1):
            for c, value in enumerate(row, start=1):
                if value.strip():
                    cells[(r, c)] = unicodedata.normalize("NFC", value)
    except csv.Error as exc:
        raise LayoutError(f"the CSV cannot be read at line {r}: {exc}") from None
    return Sheet(path.stem, cells)


# the number forms a run's extraction warns about; "140. 683" is how counts are typed here (domain.md
# §7), so only `tthc validate`, which reads files from anywhere, says it read one (READINGS)
RUN_READINGS = frozenset({"comma_grouping", "space_grouping", "leading_zeros"})


def read_workbook(path: Path, field_codes: dict[str, str],
                  quarter: Callable[[str], Period] | None = None,
                  limits: Limits = Limits(),
                  readings: frozenset[str] = RUN_READINGS) -> tuple[list[dict], list[ExtractError], list[ExtractError]]:
    """Rows of one file (one per field, plus its total row), the cell errors and the warnings;
    `readings`: the number forms read with a warning."""
    rows: list[dict] = []
    errors: list[ExtractError] = []
    warnings: list[ExtractError] = []
    found_sheet = False
    placed: dict[tuple, tuple[str, int]] = {}
    for sheet in load_sheets(path, limits):
        header_row, columns = _find_column_numbers(sheet)
        if header_row is None:
            continue
        if sheet.hidden:
            warnings.append(ExtractError("hidden sheet with a Biểu 06 layout: not read", path.name, sheet.title))
            continue
        found_sheet = True
        _check_header(sheet, header_row, columns)
        optional = _optional_columns(sheet, header_row, columns)
        period_start, period_end, unit_code = _read_title(sheet, header_row, path, quarter)
        context = _Context(path, sheet, columns, unit_code, errors, warnings, readings=readings)
        sheet_rows = []
        for r in range(header_row + 1, sheet.max_row + 1):
            label = sheet.value(r, columns[2])
            first = normalise(sheet.value(r, columns.get(1, 1)))
            label_text = normalise(label)
            if any(label_text.startswith(x) or first.startswith(x) for x in _END_LABELS):
                break
            values = {n: sheet.value(r, c) for n, c in columns.items() if n >= 3}
            empty = all(v is None or str(v).strip() in ("", "-") for v in values.values())
            if empty and not label_text:
                continue
            if context.merged_in_row(r):
                continue
            is_total = label_text in _TOTAL_LABELS
            field_code = None if is_total else field_codes.get(label_text)
            if field_code is None and not is_total:
                if empty or _GROUP_NUMBER.match(str(sheet.value(r, columns.get(1, 1)) or "").strip()):
                    continue  # a heading of a group of rows (level, field group) or a note
                errors.append(ExtractError(
                    f"unknown field of work {label!r}: expected one of the fields in config/province.yaml",
                    path.name, sheet.title, r, get_column_letter(columns[2]), unit_code=unit_code))
                continue
            key = (unit_code, period_start, field_code)
            if key in placed:
                errors.append(ExtractError(
                    f"{'the total row' if is_total else f'field {label!r}'} of unit {unit_code} again "
                    f"(already on sheet {placed[key][0]!r} row {placed[key][1]}): this row is not read",
                    path.name, sheet.title, r, get_column_letter(columns[2]), unit_code=unit_code))
                continue
            placed[key] = (sheet.title, r)
            row = {"file": path.name, "sheet": sheet.title, "row": r, "unit_code": unit_code,
                   "period_start": period_start, "period_end": period_end, "field_code": field_code,
                   "field_name": str(label).strip() if label is not None else None, "is_total": is_total}
            for number, name in FIGURE_BY_COLUMN_NUMBER.items():
                row[name] = context.figure(r, number, name) if number in columns else None
            for number, name in optional.items():
                row[name] = context.figure(r, number, name)
            if not is_total:
                context.check_typed_row_totals(row)
            sheet_rows.append(row)
        if not any(not row["is_total"] for row in sheet_rows) and not any(e.sheet == sheet.title for e in errors):
            raise LayoutError(f"sheet {sheet.title!r}: no field rows below the column-number row {header_row}")
        context.check_typed_column_totals(sheet_rows)
        context.report_uncached()
        rows.extend(sheet_rows)
    if not found_sheet:
        raise LayoutError("no sheet has the Biểu 06 column-number row '(1) (2) … (13)'")
    return rows, errors, warnings


@dataclass
class _Context:
    path: Path
    sheet: Sheet
    columns: dict[int, int]
    unit_code: str
    errors: list[ExtractError]
    warnings: list[ExtractError]
    uncached: list[tuple] = field(default_factory=list)
    reported_merges: set = field(default_factory=set)
    blanked: set = field(default_factory=set)  # cells of a merged range in the table: their figures are unknown
    readings: frozenset = RUN_READINGS

    def merged_in_row(self, r: int) -> bool:
        """A merged range in a row of the table (a field or total row) is an error naming it: a
        figure per cell is expected, so its figures are unknown. True when the row is not read
        at all (its label is the lower part of a range merged across rows)."""
        figures = {c for n, c in self.columns.items() if n >= 3}
        label_col = self.columns[2]
        skip = False
        for r1, c1, r2, c2 in self.sheet.merged:
            across_figures = any(c1 <= c <= c2 for c in figures)
            down_labels = r2 > r1 and c1 <= label_col <= c2
            if not (r1 <= r <= r2) or not (across_figures or down_labels):
                continue  # STT and label merged side by side is harmless
            span = f"{get_column_letter(c1)}{r1}:{get_column_letter(c2)}{r2}"
            if r > r1 and c1 <= label_col <= c2:
                skip = True
            if (r1, c1, r2, c2) not in self.reported_merges:
                self.reported_merges.add((r1, c1, r2, c2))
                shown = self.sheet.value(r1, c1)
                self.errors.append(ExtractError(
                    f"cells {span} are merged inside the table (showing {shown!r}): each figure and each field "
                    f"needs its own cell; the figures of the merged cells are not read"
                    + ((f", nor row {r2}" if r2 == r1 + 1 else f", nor rows {r1 + 1}–{r2}") + " under the merged label"
                       if r2 > r1 and c1 <= label_col <= c2 else ""),
                    file=self.path.name, sheet=self.sheet.title, row=r1, column=get_column_letter(c1),
                    unit_code=self.unit_code))
            self.blanked.update((rr, cc) for rr in range(r1, r2 + 1) for cc in range(c1, c2 + 1)
                                if cc != label_col and cc != self.columns.get(1))
        return skip

    def report_uncached(self) -> None:
        """One warning per sheet: a file never recalculated has every formula without a value."""
        if self.uncached:
            r, number, name, formula = min(self.uncached)
            self.warnings.append(ExtractError(
                f"{len(self.uncached)} formulas have no cached value (the file was never recalculated): "
                f"their values were computed from their inputs, first {name} {formula}", **self._where(r, number)))

    def _where(self, r: int, number: int) -> dict:
        return {"file": self.path.name, "sheet": self.sheet.title, "row": r,
                "column": get_column_letter(self.columns[number]), "unit_code": self.unit_code}

    def figure(self, r: int, number: int, name: str) -> int | None:
        c = self.columns[number]
        if (r, c) in self.blanked:
            return None
        cached = self.sheet.value(r, c)
        formula = self.sheet.formulas.get((r, c))
        if formula is not None and _EXTERNAL_REF.search(formula):
            self.errors.append(ExtractError(
                f"{name}: the formula {formula} reads another workbook (an external link): its value "
                f"({cached!r} when last saved) cannot be checked here; type the figure or copy the values in",
                **self._where(r, number)))
            return None
        try:
            reading = read_count(cached)
        except NotACount as exc:
            check = "schema.count_approximate" if isinstance(exc, ApproximateCount) else None
            self.errors.append(ExtractError(f"{name}: {exc}", **self._where(r, number), check=check))
            return None
        value = reading.value
        if reading.note in self.readings:
            self.warnings.append(ExtractError(f"{name}: {reading_en(cached, reading)}", **self._where(r, number),
                                              check="schema.count_reading"))
        if formula is None:
            return value
        computed = _evaluate(formula, self.sheet)
        if value is None and computed is not None:
            self.uncached.append((r, number, name, formula))
            return computed
        if computed is not None and value != computed:
            self.warnings.append(ExtractError(
                f"{name}: the cached value {value} of {formula} disagrees with its inputs ({computed}): "
                f"the workbook was not recalculated after an edit; the cached value is kept", **self._where(r, number)))
        return value

    def check_typed_row_totals(self, row: dict) -> None:
        for total, parts in SUM_IDENTITIES.items():
            number = COLUMN_NUMBER[total]
            if number not in self.columns or (row["row"], self.columns[number]) in self.sheet.formulas:
                continue
            if row[total] is None or any(row[p] is None for p in parts):
                continue
            expected = sum(row[p] for p in parts)
            if row[total] != expected:
                formula = "=" + "+".join(f"{get_column_letter(self.columns[COLUMN_NUMBER[p]])}{row['row']}"
                                         for p in parts)
                self.warnings.append(ExtractError(
                    f"{total}: typed total {row[total]} disagrees with the form's formula {formula} = {expected}",
                    **self._where(row["row"], number)))

    def check_typed_column_totals(self, rows: list[dict]) -> None:
        fields = [r for r in rows if not r["is_total"]]
        for total_row in (r for r in rows if r["is_total"]):
            for number, name in FIGURE_BY_COLUMN_NUMBER.items():
                if number not in self.columns or (total_row["row"], self.columns[number]) in self.sheet.formulas:
                    continue
                if total_row[name] is None or not fields or any(r[name] is None for r in fields):
                    continue
                expected = sum(r[name] for r in fields)
                if total_row[name] != expected:
                    letter = get_column_letter(self.columns[number])
                    self.warnings.append(ExtractError(
                        f"{name}: typed total {total_row[name]} disagrees with the sum of the field rows "
                        f"(=SUM({letter}{fields[0]['row']}:{letter}{fields[-1]['row']}) = {expected})",
                        **self._where(total_row["row"], number)))


def _evaluate(formula: str, sheet: Sheet, depth: int = 0) -> int | None:
    """The value of a sum formula (`=SUM(C14:C20)`, `=D14+E14+F14`, `=SUM(C14,C15)+C16`) from
    the cells' values (an input formula without a cached value is evaluated in turn); None
    for any other formula or an input that is not a count."""
    if depth > 5:
        return None
    body = formula.lstrip("=").replace(" ", "").upper()
    total = 0
    for term in body.split("+"):
        inner = re.fullmatch(r"SUM\((.+)\)", term)
        for part in (inner.group(1).split(",") if inner else [term]):
            ends = part.split(":")
            refs = [_REF.match(e) for e in ends]
            if len(ends) > 2 or not all(refs):
                return None
            (c1, r1), (c2, r2) = [(column_index_from_string(m.group(1)), int(m.group(2))) for m in (refs[0], refs[-1])]
            for r in range(min(r1, r2), max(r1, r2) + 1):
                for c in range(min(c1, c2), max(c1, c2) + 1):
                    value = sheet.value(r, c)
                    if value is None and (r, c) in sheet.formulas:
                        value = _evaluate(sheet.formulas[(r, c)], sheet, depth + 1)
                        if value is None:
                            return None
                    try:
                        total += parse_count(value) or 0
                    except NotACount:
                        return None
    return total


def _find_column_numbers(sheet: Sheet) -> tuple[int | None, dict[int, int]]:
    for r in range(1, min(sheet.max_row, 40) + 1):
        numbers: dict[int, int] = {}
        for c in range(1, min(sheet.max_column, 40) + 1):
            value = sheet.value(r, c)
            match = _COLUMN_NUMBER.match(str(value).strip()) if isinstance(value, str) else None
            if match:
                numbers.setdefault(int(match.group(1)), c)
        if all(n in numbers for n in range(1, 14)):
            return r, numbers
    return None, {}


def _optional_columns(sheet: Sheet, header_row: int, columns: dict[int, int]) -> dict[int, str]:
    """The columns numbered after (14) whose header names a figure real reports add: number → figure."""
    found: dict[int, str] = {}
    for number in sorted(n for n in columns if n > max(FIGURE_BY_COLUMN_NUMBER)):
        text = " ".join(normalise(sheet.shown(r, columns[number])) for r in range(max(header_row - 6, 1), header_row))
        name = next((name for name, words in _OPTIONAL_HEADERS if all(w in text for w in words)), None)
        if name is not None and name not in found.values():
            found[number] = name
    return found


def _check_header(sheet: Sheet, header_row: int, columns: dict[int, int]) -> None:
    """Refuse a sheet whose header says a numbered column is something else (columns moved
    or swapped without renumbering); merged header cells count for every column they span."""
    top = min((r for r in range(max(header_row - 6, 1), header_row)
               if any(normalise(sheet.shown(r, c)) in ("stt", "lĩnh vực giải quyết", "lĩnh vực")
                      for c in range(1, min(sheet.max_column, 20) + 1))), default=None)
    if top is None:
        return
    for number, (group, part, heading) in _EXPECTED_HEADER.items():
        if number not in columns:
            continue
        seen: list[str] = []
        for r in range(top, header_row):
            text = normalise(sheet.shown(r, columns[number]))
            if text and text not in seen:
                seen.append(text)
        text = " ".join(seen)
        groups = {g for g, words in _GROUPS.items() if any(w in text for w in words)}
        parts = {p for p, words in _PARTS.items() if any(w in text for w in words)}
        if (groups and group not in groups) or (part and parts and part not in parts):
            raise LayoutError(
                f"sheet {sheet.title!r}: column {get_column_letter(columns[number])} is numbered ({number}) but "
                f"headed {' / '.join(seen)!r}; expected ({number}) to be '{heading}'")


def _read_title(sheet: Sheet, header_row: int, path: Path,
                quarter: Callable[[str], Period] | None) -> tuple[date, date, str]:
    period = unit = label = None
    for r in range(1, header_row):
        for c in range(1, min(sheet.max_column, 20) + 1):
            value = sheet.value(r, c)
            if not isinstance(value, str):
                continue
            if period is None and (m := _PERIOD_LINE.search(value)):
                d1, m1, y1, d2, m2, y2 = map(int, m.groups())
                try:
                    period = (date(y1, m1, d1), date(y2, m2, d2))
                except ValueError:
                    raise LayoutError(
                        f"sheet {sheet.title!r} row {r}: the period line has an impossible date: {value!r}") from None
            if label is None and (m := _QUARTER_LINE.search(value)):
                number = m.group(1).lower()
                label = f"{m.group(2)}-Q{_ROMAN.get(number, number)}"
            if unit is None and (m := _UNIT_LINE.search(value)):
                unit = m.group(1)
    if label is None and (m := _QUARTER_IN_NAME.search(path.stem)):
        label = f"{m.group(1) or m.group(4)}-Q{m.group(2) or m.group(3)}"
    if period is None and label is not None and quarter is not None:
        p = quarter(label)
        period = (p.start, p.end)
    if unit is None and (m := _UNIT_IN_NAME.search(path.stem)):
        unit = m.group(1)
    if period is None:
        raise LayoutError(f"sheet {sheet.title!r}: no period: expected a line 'Từ ngày dd/mm/yyyy đến ngày dd/mm/yyyy' "
                          f"or 'Quý II năm 2024' above row {header_row}, or the quarter in the file name (…_2024-Q2)")
    if unit is None:
        raise LayoutError(f"sheet {sheet.title!r}: no unit code "
                          f"('mã ĐVHC: …' in the title lines or Bieu06_<code> in the file name)")
    return period[0], period[1], unit


def field_codes_by_name(settings: Settings) -> dict[str, str]:
    return {normalise(f["name"]): f["code"] for f in settings.fields}


def landing_schema(source: Source) -> pa.Schema:
    """One row per unit × field of each workbook, plus its total row (`is_total`)."""
    return LANDING_SCHEMA


def canonical(source: Source) -> None:
    """Self-reported figures are not dossier records: canonicalize reads them as Biểu 06 rows."""
    return None


def share(source: Source) -> Path:
    """The source's folder of workbooks: one folder per period label under it."""
    return repo_path(os.environ.get(f"TTHC_SOURCE_{source.id.upper()}_PATH") or source.spec["path"])


def unit_in_file_name(name: str) -> str | None:
    """The unit a file's name says it is (Bieu06_<code>…), as the extractor reads it."""
    named = _UNIT_IN_NAME.search(Path(name).stem)
    return named.group(1) if named else None


def submission_note_path(workbook: Path) -> Path:
    """Where the intake keeps a submitted workbook's record beside it (a dot file: never read as a workbook)."""
    return workbook.with_name(f".{workbook.name}.intake.json")


def submission_note(workbook: Path) -> ExtractError | None:
    """The explanation a unit submitted with this workbook through the intake, as a warning on its
    figures, so that it travels with them into the run's findings; None without one, or when the
    workbook is no longer the one submitted (its sha256 differs: replaced by hand)."""
    note = submission_note_path(workbook)
    if not note.is_file():
        return None
    try:
        record = json.loads(note.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not record.get("explanation") or record.get("sha256") != hashlib.sha256(workbook.read_bytes()).hexdigest():
        return None
    return ExtractError(f"giải trình của đơn vị khi nộp biểu (lần nộp {record.get('submission_id')}, "
                        f"{record.get('submitted_at')}, còn {record.get('criticals')} lỗi nghiêm trọng khi nộp): "
                        f"{record['explanation']}", workbook.name, unit_code=record.get("unit_code"))


def workbook_name(unit_code: str, suffix: str = ".xlsx") -> str:
    """The name of a unit's workbook in the period's folder, as the sample and the intake write it."""
    return f"Bieu06_{unit_code}{suffix}"


def validation_rows(path: Path, settings: Settings, limits: Limits = Limits(), quarter: Callable[[str], Period] | None = None
                    ) -> tuple[list[dict], list[Finding], list[dict]]:
    """A workbook's rows as the offline validator takes them (validations.offline.ROW_SCHEMA's
    columns), the findings of reading it (unreadable cells critical, layout notes warnings) and
    the rows as read (with sheet, row and whether each is the total row). LayoutError when the
    file is not a readable Biểu 06. Every number form read is said (a warning naming the cell),
    and the optional columns real reports add are read (issue 17)."""
    landed, errors, notes = read_workbook(path, field_codes_by_name(settings), quarter, limits,
                                          readings=frozenset(READINGS))
    rows = [{**{k: rec.get(k) for k in ("unit_code", "period_start", "period_end", *REPORTED_FIGURES)},
             "field_code": rec["field_code"] or "", "source_id": path.name, "basis": "self_reported",
             "landed_file": f"{path.name}, {rec['sheet']}", "row": rec["row"]} for rec in landed]
    findings = []
    for problem, usual in [*((e, "schema.count_unreadable") for e in errors), *((n, "schema.layout_note") for n in notes)]:
        check = CHECKS[problem.check or usual]
        findings.append(Finding(check.id, check.severity, f"{problem.where()}: {problem.message}",
                                unit_code=problem.unit_code, source_id=path.name, location=problem.where()))
    return rows, findings, landed


def extract(source: Source, period: Period, folder: Path, job: ExtractJob) -> Manifest:
    """Land the figures of every workbook in the period's inbox; a file that cannot be read as
    a Biểu 06 is refused whole and copied to `job.quarantine_dir`."""
    settings, quarantine_dir = job.settings, job.quarantine_dir
    base = share(source)
    if not base.is_dir():  # the shared folder is not there (not mounted, wrong path): the source is down
        raise SourceUnavailable(f"{source.id}: the spreadsheets folder {base} does not exist or is not a folder "
                                f"(set TTHC_SOURCE_{source.id.upper()}_PATH or the source's path)")
    inbox = base / period.label
    if not inbox.is_dir() and source.expected:
        # the share is there but not the period's folder: the quarter's collection is missing (not moved in, a
        # wrong name), not "no commune sent a workbook"; an empty folder for the period says that
        raise SourceUnavailable(
            f"{source.id}: the spreadsheets folder {base} has no folder {period.label} for the period's workbooks "
            f"(the source is expected every period): create {inbox} with the workbooks, an empty one if no commune "
            "sent any, or set expected: false on the source")
    codes = field_codes_by_name(settings)
    limits = Limits.from_spec(source.spec)
    landing = ParquetLanding(folder / LANDED_FILE, LANDING_SCHEMA)
    errors: list[ExtractError] = []
    warnings: list[ExtractError] = []
    # an absent inbox of a source not expected every period: no workbook arrived, the source lands 0 rows
    files = sorted(p for p in inbox.glob("*") if p.is_file() and not p.name.startswith((".", "~$"))) if inbox.is_dir() else []
    read = 0
    by_file: dict[Path, list[dict]] = {}
    for path in files:
        job.check_budget(source.id, f"{read} of {len(files)} workbooks read")
        try:
            rows, cell_errors, cell_warnings = read_workbook(path, codes, settings.period, limits)
            mismatched = {(r["period_start"], r["period_end"]) for r in rows} - {(period.start, period.end)}
            if mismatched:
                start, end = next(iter(mismatched))
                future = f"; that period has not ended yet (today is {date.today():%d/%m/%Y})" \
                    if end > date.today() else ""
                raise LayoutError(
                    f"the workbook reports {start:%d/%m/%Y} – {end:%d/%m/%Y}, expected {period.label} "
                    f"({period.start:%d/%m/%Y} – {period.end:%d/%m/%Y}){future}")
        except LayoutError as exc:
            message = f"{path.name}: {exc}"
            # the unit the file name says it is, so that the call-back list names whom to call
            named = _UNIT_IN_NAME.search(path.stem)
            errors.append(ExtractError(message, path.name, unit_code=named.group(1) if named else None,
                                       quarantined=quarantine_file(path, quarantine_dir, message)))
            continue
        read += 1
        errors.extend(cell_errors)
        warnings.extend(cell_warnings)
        if (explained := submission_note(path)) is not None:
            warnings.append(explained)
        by_file[path] = rows
    for rows in _one_workbook_per_unit(by_file, quarantine_dir, errors, warnings).values():
        landing.write({name: [r[name] for r in rows] for name in LANDING_SCHEMA.names})
    file_info = landing.close()
    return finish(source, period, job, file_info, errors=errors, warnings=warnings,
                  stats={"files_found": len(files), "files_read": read, "inbox": str(inbox)})


_PLACE = ("file", "sheet", "row")


def _one_workbook_per_unit(by_file: dict[Path, list[dict]], quarantine_dir: Path | None,
                           errors: list[ExtractError], warnings: list[ExtractError]) -> dict[Path, list[dict]]:
    """A unit's figures for the period come from one workbook. The same workbook saved twice
    (same figures) is read once, with a warning; workbooks that disagree are all refused, with an
    error naming every one of them and the unit, because which is right cannot be told here."""
    files_of: dict[str, list[Path]] = {}
    for path, rows in by_file.items():
        for unit in dict.fromkeys(r["unit_code"] for r in rows):
            files_of.setdefault(unit, []).append(path)
    kept = {path: list(rows) for path, rows in by_file.items()}
    for unit, paths in files_of.items():
        if len(paths) < 2:
            continue
        figures = [frozenset(tuple((k, v) for k, v in r.items() if k not in _PLACE)
                             for r in by_file[p] if r["unit_code"] == unit) for p in paths]
        names = ", ".join(p.name for p in paths)
        if all(f == figures[0] for f in figures[1:]):
            for path in paths[1:]:
                kept[path] = [r for r in kept[path] if r["unit_code"] != unit]
                warnings.append(ExtractError(
                    f"số liệu của đơn vị {unit} giống hệt tệp {paths[0].name}: là bản sao, chỉ đọc một lần",
                    path.name, unit_code=unit))
            continue
        message = (f"đơn vị {unit} gửi nhiều biểu cho cùng kỳ với số liệu khác nhau ({names}): không xác định "
                   "được biểu nào đúng nên không đọc biểu nào; mỗi đơn vị chỉ gửi một biểu")
        for path in paths:
            kept[path] = [r for r in kept[path] if r["unit_code"] != unit]
            errors.append(ExtractError(message, path.name, unit_code=unit,
                                       quarantined=quarantine_file(path, quarantine_dir, message)))
    return kept
