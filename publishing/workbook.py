"""The official Biểu 06 workbook (Circular 01/2020/TT-VPCP) of a province for one period.

The provincial office signs and sends this file, so it looks like the form: the form's column
numbers, merged group headers, the unit of measure and period lines, rows grouped by level
and field. Totals are live formulas, so an edit in the office recalculates them; each formula
also carries its cached value, so readers without a calculation engine see the numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from datetime import date
from pathlib import Path

import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_rowcol_to_cell

from tthc.cells import XLSX_TEXT_OPTIONS
from tthc.form import BESIDE_FORM_COLUMN_NUMBER, BESIDE_FORM_FIGURES, COLUMN_NUMBER, FACT_FIGURES, FIGURE_HEADERS, \
    FIGURES, LEVEL_CAPTIONS, SUM_IDENTITIES, add_up

SHEET_NAME = "Biểu 06"
FORM_TITLE = "TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH"
FORM_REFERENCE = "Biểu số 06 (ban hành kèm theo Thông tư số 01/2020/TT-VPCP)"
UNIT_OF_MEASURE = "Đơn vị tính: Số hồ sơ TTHC"
GRAND_TOTAL_LABEL = "Tổng số"
ROMAN = ("I", "II", "III", "IV")

FIRST_FIGURE_COLUMN = 2  # zero-based: A = STT, B = Lĩnh vực
COLUMN_OF = {name: FIRST_FIGURE_COLUMN + i for i, name in enumerate(FACT_FIGURES)}
LAST_COLUMN = COLUMN_OF[FACT_FIGURES[-1]]
NUMBER_OF = {**COLUMN_NUMBER, **BESIDE_FORM_COLUMN_NUMBER}

# Header rows (zero-based) and the first data row.
TITLE_ROWS = 7
HEADER_TOP = TITLE_ROWS
NUMBERS_ROW = HEADER_TOP + 3
FIRST_DATA_ROW = NUMBERS_ROW + 1


@dataclass
class _Row:
    """One written row: its label cells and its figures (None where not reported)."""

    number: str
    label: str
    values: dict[str, int | None]
    kind: str  # field | level | total


def period_line(period_start: date, period_end: date) -> str:
    return f"Từ ngày {period_start:%d/%m/%Y} đến ngày {period_end:%d/%m/%Y}"


def reporting_unit(province_name: str) -> str:
    """The People's Committee of the province, whether the configured name says "Tỉnh …" or not."""
    name = province_name.strip()
    for prefix in ("Tỉnh ", "Thành phố "):
        if name.startswith(prefix):
            name = prefix.lower() + name[len(prefix):]
            break
    return f"Ủy ban nhân dân {name}"


def _as_int(value) -> int | None:
    if value is None or pd.isna(value):
        return None
    return int(value)


def _field_rows(rows: pd.DataFrame, level: str, keep_order: bool = False) -> list[_Row]:
    """One row per field of the level; several input rows of a field (one per unit) are summed,
    and a figure no unit reported stays empty rather than becoming 0. Fields by code, or in the
    order given (`keep_order`: a form lists them as the province's configuration does)."""
    part = rows[rows["unit_level"] == level]
    if part.empty:
        return []
    part = part.assign(field_name=part["field_name"].fillna(part["field_code"]),
                       **{f: pd.NA for f in BESIDE_FORM_FIGURES if f not in part})
    grouped = part.groupby(["field_code"], sort=not keep_order, dropna=False).agg(
        field_name=("field_name", "first"), **{f: (f, partial(add_up, f)) for f in FACT_FIGURES})
    return [_Row(str(i), str(row["field_name"]), {f: _as_int(row[f]) for f in FACT_FIGURES}, "field")
            for i, (_, row) in enumerate(grouped.iterrows(), start=1)]


def _check_input(rows: pd.DataFrame) -> None:
    missing = {"unit_level", "field_code", "field_name", *FIGURES} - set(rows.columns)
    if missing:
        raise ValueError(f"Biểu 06 rows lack columns: {', '.join(sorted(missing))}")
    unknown = set(rows["unit_level"].dropna()) - set(LEVEL_CAPTIONS)
    if unknown or rows["unit_level"].isna().any():
        raise ValueError(f"Biểu 06 rows have unit levels outside {sorted(LEVEL_CAPTIONS)}: {sorted(map(str, unknown))}")


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        base = {"font_name": "Times New Roman", "font_size": 11}
        border = {**base, "border": 1, "valign": "vcenter"}
        self.title = book.add_format({**base, "bold": True, "font_size": 13, "align": "center"})
        self.centered = book.add_format({**base, "align": "center"})
        self.italic = book.add_format({**base, "italic": True, "align": "center"})
        self.unit_line = book.add_format({**base, "italic": True, "align": "right"})
        self.header = book.add_format({**border, "bold": True, "align": "center", "text_wrap": True})
        self.numbers = book.add_format({**border, "italic": True, "align": "center"})
        self.text = {kind: book.add_format({**border, "text_wrap": True, "bold": kind != "field"})
                     for kind in ("field", "level", "total")}
        self.stt = {kind: book.add_format({**border, "align": "center", "bold": kind != "field"})
                    for kind in ("field", "level", "total")}
        self.number = {kind: book.add_format({**border, "num_format": "#,##0", "bold": kind != "field",
                                              **({"bg_color": "#F2F2F2"} if kind != "field" else {})})
                       for kind in ("field", "level", "total")}
        self.note = book.add_format({**base, "italic": True, "font_size": 10})


def _write_header(sheet, fmt: _Formats, reporter: str, period_start: date, period_end: date,
                  period_label: str, figures: tuple[str, ...] = FACT_FIGURES) -> None:
    last = COLUMN_OF[figures[-1]]
    sheet.merge_range(0, 0, 0, last, FORM_REFERENCE, fmt.italic)
    sheet.merge_range(1, 0, 1, last, FORM_TITLE, fmt.title)
    sheet.merge_range(2, 0, 2, last, f"Kỳ báo cáo: {period_label}", fmt.centered)
    sheet.merge_range(3, 0, 3, last, period_line(period_start, period_end), fmt.italic)
    sheet.merge_range(4, 0, 4, last, f"Đơn vị báo cáo: {reporter}", fmt.centered)
    sheet.merge_range(5, 0, 5, last, UNIT_OF_MEASURE, fmt.unit_line)

    top, mid, low = HEADER_TOP, HEADER_TOP + 1, HEADER_TOP + 2
    col = COLUMN_OF
    sheet.merge_range(top, 0, low, 0, "STT", fmt.header)
    sheet.merge_range(top, 1, low, 1, "Lĩnh vực, đơn vị giải quyết", fmt.header)
    sheet.merge_range(top, col["received_total"], top, col["carried_over"], "Số hồ sơ nhận giải quyết", fmt.header)
    sheet.merge_range(mid, col["received_total"], low, col["received_total"], "Tổng số", fmt.header)
    sheet.merge_range(mid, col["received_online"], mid, col["received_direct_postal"], "Trong kỳ", fmt.header)
    sheet.write(low, col["received_online"], "Trực tuyến", fmt.header)
    sheet.write(low, col["received_direct_postal"], "Trực tiếp, dịch vụ bưu chính", fmt.header)
    sheet.merge_range(mid, col["carried_over"], low, col["carried_over"], "Từ kỳ trước", fmt.header)
    sheet.merge_range(top, col["resolved_total"], top, col["resolved_late"], "Số hồ sơ đã giải quyết", fmt.header)
    sheet.merge_range(top, col["pending_total"], top, col["pending_overdue"], "Số hồ sơ đang giải quyết", fmt.header)
    for name, text in (("resolved_total", "Tổng số"), ("resolved_early", "Trước hạn"),
                       ("resolved_on_time", "Đúng hạn"), ("resolved_late", "Quá hạn"),
                       ("pending_total", "Tổng số"), ("pending_within_due", "Trong hạn"),
                       ("pending_overdue", "Quá hạn")):
        sheet.merge_range(mid, col[name], low, col[name], text, fmt.header)
    for name in ("returned_withdrawn", *(f for f in BESIDE_FORM_FIGURES if f in figures)):
        sheet.merge_range(top, col[name], low, col[name], FIGURE_HEADERS[name], fmt.header)
    sheet.write(NUMBERS_ROW, 0, "(1)", fmt.numbers)
    sheet.write(NUMBERS_ROW, 1, "(2)", fmt.numbers)
    for name in figures:
        sheet.write(NUMBERS_ROW, col[name], f"({NUMBER_OF[name]})", fmt.numbers)


def _write_field_row(sheet, fmt: _Formats, r: int, row: _Row, form: bool = False,
                     figures: tuple[str, ...] = FACT_FIGURES) -> None:
    """Figures as reported; a total becomes a formula over its parts only where the parts are all
    reported and add up to it, so the sheet never shows a figure the unit did not publish. A
    blank `form` has every total as a formula, for the unit to fill its parts."""
    for name in figures:
        value = row.values[name]
        parts = SUM_IDENTITIES.get(name)
        part_values = [row.values[p] for p in parts] if parts else []
        if parts and form:
            cells = "+".join(xl_rowcol_to_cell(r, COLUMN_OF[p]) for p in parts)
            sheet.write_formula(r, COLUMN_OF[name], f"={cells}", fmt.number["level"], 0)
        elif form:
            sheet.write_blank(r, COLUMN_OF[name], None, fmt.number["field"])
        elif parts and value is not None and None not in part_values and sum(part_values) == value:
            cells = "+".join(xl_rowcol_to_cell(r, COLUMN_OF[p]) for p in parts)
            sheet.write_formula(r, COLUMN_OF[name], f"={cells}", fmt.number["field"], value)
        elif value is None:
            sheet.write_blank(r, COLUMN_OF[name], None, fmt.number["field"])
        else:
            sheet.write_number(r, COLUMN_OF[name], value, fmt.number["field"])
            if parts:
                sheet.write_comment(r, COLUMN_OF[name], "Tổng số đơn vị báo cáo khác tổng các cột thành phần "
                                    "hoặc thiếu cột thành phần; giữ nguyên số đã báo cáo.")


def _write_sum_row(sheet, fmt: _Formats, r: int, row: _Row, sources: list[int], form: bool = False,
                   figures: tuple[str, ...] = FACT_FIGURES) -> None:
    """A level's subtotal is SUM over its field rows, the grand total the sum of the level rows;
    a figure none of them reported stays empty (on a blank `form`, every one is a formula)."""
    for name in figures:
        value = row.values[name]
        c = COLUMN_OF[name]
        if value is None and not form:
            sheet.write_blank(r, c, None, fmt.number[row.kind])
            continue
        if row.kind == "level":
            formula = f"=SUM({xl_rowcol_to_cell(sources[0], c)}:{xl_rowcol_to_cell(sources[-1], c)})"
        else:
            formula = "=" + "+".join(xl_rowcol_to_cell(s, c) for s in sources)
        sheet.write_formula(r, c, formula, fmt.number[row.kind], value or 0)


def _write_labels(sheet, fmt: _Formats, r: int, row: _Row) -> None:
    sheet.write_string(r, 0, row.number, fmt.stt[row.kind])
    sheet.write_string(r, 1, row.label, fmt.text[row.kind])


def write_bieu06_workbook(path: Path, *, province_name: str, period_start: date, period_end: date,
                          period_label: str, rows: pd.DataFrame, vintage: int) -> Path:
    """Write the province's Biểu 06 for the period to `path` (.xlsx) and return the path.

    `rows`: `unit_level` (department, district, commune), `field_code`, `field_name` and every
    figure of tthc.form.FIGURES (null where not reported), and optionally those beside the form
    (tthc.form.BESIDE_FORM_FIGURES), one row per unit × field or already summed per level × field.
    """
    _check_input(rows)
    return _write_book(
        Path(path), rows, reporter=reporting_unit(province_name), period_start=period_start, period_end=period_end,
        period_label=period_label, title=f"Biểu 06 – {province_name} – {period_label}",
        comments=f"Số liệu công bố lần {vintage}; {period_line(period_start, period_end)}",
        note=f"Ô để trống: không có số liệu báo cáo. Số liệu công bố lần {vintage}.", form=False)


def unit_reporter(unit_name: str, unit_code: str) -> str:
    """The reporting-unit line of a unit's form; the unit code in it is what the spreadsheet
    extractor reads the unit from ('mã ĐVHC: …')."""
    return f"{unit_name} (mã ĐVHC: {unit_code})"


def write_unit_form(path: Path, *, unit_code: str, unit_name: str, unit_level: str, period_start: date,
                    period_end: date, period_label: str, fields: list[dict]) -> Path:
    """A unit's blank Biểu 06 for the period, for it to fill: the same layout as the province's
    published workbook, the unit's name and code and the period's dates in the title lines, one
    row per field of work (`fields`: code, name), and every total a formula over its parts. Only
    the form's columns (3) … (14): the figures beside the form come from dossier records."""
    rows = pd.DataFrame([{"unit_level": unit_level, "field_code": f["code"], "field_name": f["name"],
                          **{name: None for name in FIGURES}} for f in fields])
    _check_input(rows)
    return _write_book(
        Path(path), rows, reporter=unit_reporter(unit_name, unit_code), period_start=period_start,
        period_end=period_end, period_label=period_label, title=f"Biểu 06 – {unit_name} – {period_label}",
        comments=f"Biểu mẫu của {unit_name} (mã ĐVHC: {unit_code}); {period_line(period_start, period_end)}",
        note="Nhập số liệu vào các ô trắng; các ô nền xám là công thức, tự tính.", form=True)


def _write_book(path: Path, rows: pd.DataFrame, *, reporter: str, period_start: date, period_end: date,
                period_label: str, title: str, comments: str, note: str, form: bool) -> Path:
    figures = FIGURES if form else FACT_FIGURES
    last = COLUMN_OF[figures[-1]]
    path.parent.mkdir(parents=True, exist_ok=True)
    levels = [(level, _field_rows(rows, level, keep_order=form)) for level in LEVEL_CAPTIONS]
    levels = [(level, fields) for level, fields in levels if fields]

    book = xlsxwriter.Workbook(str(path), XLSX_TEXT_OPTIONS)
    book.set_properties({"title": title, "subject": FORM_TITLE.capitalize(), "comments": comments})
    sheet = book.add_worksheet(SHEET_NAME)
    fmt = _Formats(book)
    _write_header(sheet, fmt, reporter, period_start, period_end, period_label, figures)

    total_row = FIRST_DATA_ROW
    r = total_row + 1
    level_rows: list[tuple[int, _Row]] = []
    for index, (level, fields) in enumerate(levels):
        level_row = r
        first_field = r + 1
        field_rows = list(range(first_field, first_field + len(fields)))
        subtotal = _Row(ROMAN[index], LEVEL_CAPTIONS[level],
                        {f: add_up(f, [fr.values[f] for fr in fields]) for f in FACT_FIGURES}, "level")
        _write_labels(sheet, fmt, level_row, subtotal)
        _write_sum_row(sheet, fmt, level_row, subtotal, field_rows, form, figures)
        for fr_index, field in zip(field_rows, fields):
            _write_labels(sheet, fmt, fr_index, field)
            _write_field_row(sheet, fmt, fr_index, field, form, figures)
        level_rows.append((level_row, subtotal))
        r = first_field + len(fields)

    total = _Row("", GRAND_TOTAL_LABEL,
                 {f: add_up(f, [lr.values[f] for _, lr in level_rows]) for f in FACT_FIGURES}, "total")
    _write_labels(sheet, fmt, total_row, total)
    if level_rows:
        _write_sum_row(sheet, fmt, total_row, total, [lr for lr, _ in level_rows], form, figures)
    else:
        for name in figures:
            sheet.write_blank(total_row, COLUMN_OF[name], None, fmt.number["total"])

    sheet.write(r + 1, 1, note, fmt.note)

    sheet.set_column(0, 0, 6)
    sheet.set_column(1, 1, 42)
    sheet.set_column(FIRST_FIGURE_COLUMN, last - 1, 11.5)
    sheet.set_column(last, last, 13)
    sheet.set_row(HEADER_TOP + 2, 45)
    sheet.freeze_panes(FIRST_DATA_ROW, 2)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    sheet.repeat_rows(HEADER_TOP, NUMBERS_ROW)
    sheet.fit_to_pages(1, 0)
    sheet.center_horizontally()
    sheet.set_footer("&CTrang &P/&N")
    sheet.print_area(0, 0, max(r, FIRST_DATA_ROW), last)
    book.close()
    return path

