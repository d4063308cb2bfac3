"""Biểu 06 workbooks as a commune fills them in, written with XlsxWriter so that formulas carry
cached values (readers that do not evaluate formulas still see numbers).

Kept free of numpy and pandas: workbooks are written by worker processes that start fresh.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from multiprocessing import get_context
from pathlib import Path

import xlsxwriter
from xlsxwriter.worksheet import Worksheet

SHEET_NAME = "Biểu 06"
HEADER_FIRST_ROW = 9
COLUMN_NUMBER_ROW = 12
TOTAL_ROW = 13
FIRST_FIELD_ROW = 14
LAST_COLUMN = 13  # N
FORM_COLUMNS = 14
FIRST_FIGURE_COLUMN = 2  # C

# (first row, first col, last row, last col, text), rows as Excel numbers, columns from 0 (A)
HEADER = (
    (9, 0, 11, 0, "STT"),
    (9, 1, 11, 1, "Lĩnh vực giải quyết"),
    (9, 2, 9, 5, "Số hồ sơ nhận giải quyết"),
    (10, 2, 11, 2, "Tổng số"),
    (10, 3, 10, 4, "Trong kỳ"),
    (11, 3, 11, 3, "Trực tuyến"),
    (11, 4, 11, 4, "Trực tiếp, dịch vụ bưu chính"),
    (10, 5, 11, 5, "Từ kỳ trước"),
    (9, 6, 9, 9, "Số hồ sơ đã giải quyết"),
    (10, 6, 11, 6, "Tổng số"),
    (10, 7, 11, 7, "Trước hạn"),
    (10, 8, 11, 8, "Đúng hạn"),
    (10, 9, 11, 9, "Quá hạn"),
    (9, 10, 9, 12, "Số hồ sơ đang giải quyết"),
    (10, 10, 11, 10, "Tổng số"),
    (10, 11, 11, 11, "Trong hạn"),
    (10, 12, 11, 12, "Quá hạn"),
    (9, 13, 11, 13, "Số hồ sơ trả lại, rút, dừng xử lý"),
)
# figure index (tthc.model.FIGURES order) of a total → the figure indexes it adds up
FORMULA_TOTALS = {0: (1, 2, 3), 4: (5, 6, 7), 8: (9, 10)}
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


class _FormSheet(Worksheet):
    """The form's formulas are sums (SUM and +), which need none of the future-function
    prefixes XlsxWriter otherwise looks for with some sixty regular expressions per formula:
    a quarter of the time a workbook takes. Should XlsxWriter rename the hook, the override
    is simply unused."""

    def _prepare_formula(self, formula, expand_future_functions=False):
        return formula.removeprefix("=")


def column_letter(figure_index: int) -> str:
    return chr(ord("A") + FIRST_FIGURE_COLUMN + figure_index)


@dataclass
class WorkbookSpec:
    """Everything a workbook shows; `values` are the figures as written (field rows ×
    FIGURES), `typed_over` the formula cells typed over, `texts` the cells stored as text."""

    path: str
    province_name: str
    unit_code: str
    unit_name: str
    period_label: str
    period_start: date
    period_end: date
    field_names: list[str]
    values: list[list[int]]
    formula_totals: bool
    typed_over: list[tuple[int, int]]
    texts: list[tuple[tuple[int, int], str]]

    @property
    def created(self) -> datetime:
        """When the commune saved the file: a few days after the quarter, fixed so that the
        bytes are the same on every generation."""
        return datetime.combine(self.period_end + timedelta(days=5), time(9, 30))


def write_workbooks(root: Path, specs: list[WorkbookSpec], workers: int | None = None) -> None:
    """Write every workbook under `root`, spread over worker processes when there are many.
    Workers are spawned, not forked, so that a caller's threads (a running server) are safe."""
    for folder in sorted({Path(spec.path).parent for spec in specs}):
        (root / folder).mkdir(parents=True, exist_ok=True)
    workers = workers or min(4, len(os.sched_getaffinity(0)))
    if workers <= 1 or len(specs) < 200:
        _write_batch(root, specs)
        return
    batches = [specs[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_write_batch, [root] * workers, batches))


def _write_batch(root: Path, specs: list[WorkbookSpec]) -> None:
    for spec in specs:
        write_workbook(root / spec.path, spec)


def write_workbook(path: Path, spec: WorkbookSpec) -> None:
    workbook = xlsxwriter.Workbook(str(path), {"in_memory": True})
    workbook.set_properties({"title": "Biểu 06", "author": f"UBND {spec.unit_name}", "created": spec.created})
    f = _formats(workbook)
    sheet = workbook.add_worksheet(SHEET_NAME, worksheet_class=_FormSheet)
    sheet.set_landscape()
    sheet.set_paper(9)
    sheet.fit_to_pages(1, 0)
    sheet.set_column(0, 0, 5)
    sheet.set_column(1, 1, 34)
    sheet.set_column(2, LAST_COLUMN, 11)

    q = int(spec.period_label[-1])
    sheet.merge_range(0, 0, 0, 4, f"ỦY BAN NHÂN DÂN {spec.province_name.upper()}", f["bold_center"])
    sheet.merge_range(0, 5, 0, LAST_COLUMN, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", f["bold_center"])
    sheet.merge_range(1, 0, 1, 4, f"UBND {spec.unit_name}", f["bold_center"])
    sheet.merge_range(1, 5, 1, LAST_COLUMN, "Độc lập - Tự do - Hạnh phúc", f["motto"])
    sheet.merge_range(3, 0, 3, LAST_COLUMN, "BIỂU 06. TÌNH HÌNH, KẾT QUẢ GIẢI QUYẾT THỦ TỤC HÀNH CHÍNH", f["title"])
    sheet.write_string(4, 0, f"Kỳ báo cáo: Quý {ROMAN[q]} năm {spec.period_end.year} "
                             f"(Từ ngày {spec.period_start:%d/%m/%Y} đến ngày {spec.period_end:%d/%m/%Y})", f["italic"])
    sheet.write_string(5, 0, f"Đơn vị báo cáo: UBND {spec.unit_name} (mã ĐVHC: {spec.unit_code})", f["plain"])
    sheet.write_string(6, 0, "Đơn vị tính: Số hồ sơ TTHC", f["italic"])

    for first_row, first_col, last_row, last_col, text in HEADER:
        if (first_row, first_col) == (last_row, last_col):
            sheet.write_string(first_row - 1, first_col, text, f["header"])
        else:
            sheet.merge_range(first_row - 1, first_col, last_row - 1, last_col, text, f["header"])
    sheet.set_row(HEADER_FIRST_ROW + 1, 45)
    for col in range(FORM_COLUMNS):
        sheet.write_string(COLUMN_NUMBER_ROW - 1, col, f"({col + 1})", f["column_number"])

    first, last = FIRST_FIELD_ROW, FIRST_FIELD_ROW + len(spec.field_names) - 1
    sheet.write_blank(TOTAL_ROW - 1, 0, None, f["total_label"])
    sheet.write_string(TOTAL_ROW - 1, 1, "Tổng cộng", f["total_label"])
    for i in range(len(spec.values[0]) if spec.values else 0):
        letter = column_letter(i)
        cached = sum(row[i] for row in spec.values)
        sheet.write_formula(TOTAL_ROW - 1, FIRST_FIGURE_COLUMN + i, f"=SUM({letter}{first}:{letter}{last})", f["total"], cached)

    typed_over = set(map(tuple, spec.typed_over))
    texts = {tuple(cell): text for cell, text in spec.texts}
    for r, (name, values) in enumerate(zip(spec.field_names, spec.values)):
        excel_row = FIRST_FIELD_ROW + r
        sheet.write_number(excel_row - 1, 0, r + 1, f["stt"])
        sheet.write_string(excel_row - 1, 1, name, f["text"])
        for i, value in enumerate(values):
            col = FIRST_FIGURE_COLUMN + i
            if (r, i) in texts:
                sheet.write_string(excel_row - 1, col, texts[(r, i)], f["number_as_text"])
            elif spec.formula_totals and i in FORMULA_TOTALS and (r, i) not in typed_over:
                formula = "=" + "+".join(f"{column_letter(p)}{excel_row}" for p in FORMULA_TOTALS[i])
                sheet.write_formula(excel_row - 1, col, formula, f["number"], value)
            else:
                sheet.write_number(excel_row - 1, col, value, f["number"])

    note_row = last + 2  # after an empty row
    sheet.write_string(note_row - 1, 0, "Ghi chú: Số liệu tổng hợp từ sổ theo dõi hồ sơ tại Bộ phận Một cửa "
                                        "và phần mềm một cửa điện tử.", f["italic"])
    signed = spec.period_end + timedelta(days=5)
    sheet.write_string(note_row + 1, 10, f"{spec.unit_name}, ngày {signed:%d} tháng {signed:%m} năm {signed.year}", f["italic"])
    sheet.write_string(note_row + 2, 1, "NGƯỜI LẬP BIỂU", f["bold_center"])
    sheet.write_string(note_row + 2, 11, "CHỦ TỊCH", f["bold_center"])
    sheet.write_string(note_row + 3, 1, "(Ký, ghi rõ họ tên)", f["italic_center"])
    sheet.write_string(note_row + 3, 11, "(Ký tên, đóng dấu)", f["italic_center"])
    workbook.close()


def _formats(workbook: xlsxwriter.Workbook) -> dict:
    base = {"font_name": "Times New Roman", "font_size": 12}
    boxed = {**base, "border": 1, "valign": "vcenter"}
    specs = {
        "bold_center": {**base, "bold": True, "align": "center"},
        "motto": {**base, "bold": True, "underline": True, "align": "center"},
        "title": {**base, "bold": True, "font_size": 14, "align": "center"},
        "italic_center": {**base, "italic": True, "align": "center"},
        "italic": {**base, "italic": True},
        "plain": base,
        "header": {**boxed, "bold": True, "align": "center", "text_wrap": True},
        "column_number": {**boxed, "italic": True, "align": "center"},
        "total_label": {**boxed, "bold": True, "align": "center"},
        "total": {**boxed, "bold": True, "num_format": "#,##0"},
        "stt": {**boxed, "align": "center"},
        "text": {**boxed, "text_wrap": True},
        "number": {**boxed, "num_format": "#,##0"},
        "number_as_text": {**boxed, "align": "right"},
    }
    return {name: workbook.add_format(props) for name, props in specs.items()}
