"""A unit's uploaded Biểu 06 checked as the pipeline would check it, before anything is kept:
read by the spreadsheet extractor (its size, zip-bomb, encoding and external-formula checks),
validated by the offline validator of `tthc validate`, and every finding placed on the cell it
is about, in Vietnamese. A file that cannot be taken at all is a refusal saying why."""
from __future__ import annotations

import io
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from extractors.spreadsheet import (SUFFIXES, Limits, LayoutError, check_zip, decode_csv, load_sheets,
                                    validation_rows, workbook_name)
from tthc.config import Settings
from tthc.form import FIGURE_LABELS, FIGURES, SUM_IDENTITIES
from tthc.numbers import APPROXIMATIONS_VI, READINGS
from tthc.periods import Period
from validations.offline import ROW_SCHEMA, FindingsOut, StreamingValidation

# personal data a Biểu 06 never holds: a citizen-ID number (12 digits), a mobile number, a person's name column
_CITIZEN_ID = re.compile(r"(?<!\d)0\d{11}(?!\d)")
_PHONE = re.compile(r"(?<![\d.])(?:\+84|0)(?:3|5|7|8|9)\d{8}(?!\d)")
_PERSONAL_HEADERS = ("họ và tên", "họ tên", "số cccd", "căn cước", "cmnd", "số điện thoại", "ngày sinh")
_ROW_IN_LOCATION = re.compile(r"(?:row|dòng) (\d+)(?:, column ([A-Z]{1,3}))?")
INPUTS = tuple(name for name in FIGURES if name not in SUM_IDENTITIES)  # the cells a unit types; totals are formulas
SEVERITY_VI = {"critical": "Nghiêm trọng", "warning": "Cảnh báo", "info": "Thông tin"}


class Refused(ValueError):
    """The upload cannot be taken: the message says why, in Vietnamese; `detail` is the reader's own words."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass
class CellFinding:
    severity: str
    check: str
    message: str
    where: str
    field_code: str | None = None
    figure: str | None = None
    suggested: int | None = None
    row: int | None = None

    @property
    def anchor(self) -> str | None:
        if self.figure is None:
            return None
        return f"o-{self.field_code or 'tong'}-{self.figure}"


@dataclass
class GridRow:
    label: str
    field_code: str
    sheet_row: int
    is_total: bool
    values: dict[str, int | None]


@dataclass
class CheckResult:
    rows: list[GridRow] = field(default_factory=list)
    findings: list[CellFinding] = field(default_factory=list)

    @property
    def criticals(self) -> int:
        return sum(f.severity == "critical" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def at(self, field_code: str, figure: str) -> list[CellFinding]:
        return [f for f in self.findings if f.figure == figure and (f.field_code or "") == field_code]

    def suggestions(self, field_code: str, figure: str) -> list[int]:
        """The corrections proposed for a cell, each once (an identity and its diagnosis agree)."""
        return list(dict.fromkeys(f.suggested for f in self.at(field_code, figure) if f.suggested is not None))

    def unplaced(self) -> list[CellFinding]:
        return [f for f in self.findings if f.figure is None]


def check_upload(data: bytes, filename: str, unit_code: str, period: Period, settings: Settings,
                 units, limits: Limits | None = None) -> CheckResult:
    """Every finding of the upload, or Refused. `units`: the province's units (tthc.units)."""
    limits = limits or Limits()
    suffix = Path(filename or "").suffix.lower()
    if not data:
        raise Refused("Tệp tải lên rỗng (0 byte): hãy chọn lại tệp Biểu 06 đã nhập số liệu.")
    if len(data) > limits.max_file_bytes:
        raise Refused(too_big(len(data), limits.max_file_bytes))
    if suffix not in SUFFIXES:
        raise Refused(f"Tệp {filename!r} không phải Biểu 06 dạng Excel (.xlsx) hoặc CSV: hãy tải lên tệp .xlsx "
                      "đã tải về từ trang này, hoặc tệp .csv cùng bố cục.")
    with tempfile.TemporaryDirectory(prefix="tthc_intake_") as folder:
        path = Path(folder) / workbook_name(unit_code, suffix)
        path.write_bytes(data)
        _precheck(path, suffix, limits)
        try:
            rows, reading, landed = validation_rows(path, settings, limits, settings.period)
        except LayoutError as exc:
            raise Refused(_layout_message(str(exc)), str(exc)) from None
        _check_identity(landed, unit_code, period)
        unreadable = any(f.check_id in ("schema.count_unreadable", "schema.count_approximate") for f in reading)
        if not unreadable and all(rec[name] is None for rec in landed if not rec["is_total"] for name in INPUTS):
            raise Refused("Biểu chưa có số liệu: mọi ô để nhập đều trống. Hãy nhập số liệu của đơn vị rồi tải lên lại "
                          "(lĩnh vực không có hồ sơ nào trong kỳ: ghi số 0).")
        findings = validate(rows, reading, settings, units)
    result = CheckResult(rows=[GridRow(str(rec["field_name"] or ""), rec["field_code"] or "", rec["row"], rec["is_total"],
                                       {name: rec[name] for name in FIGURES}) for rec in landed])
    by_row = {rec["row"]: rec["field_code"] or "" for rec in landed}
    result.findings = [_placed(item, by_row) for item in findings]
    result.findings.sort(key=lambda f: ({"critical": 0, "warning": 1, "info": 2}[f.severity], f.row or 0, f.where))
    return result


def too_big(size: int, limit: int) -> str:
    return (f"Tệp lớn {size / 1048576:.1f} MB, vượt giới hạn {limit / 1048576:.0f} MB của một Biểu 06: tệp không được "
            "đọc. Biểu 06 của một đơn vị chỉ vài chục KB; hãy lưu lại biểu (không kèm hình ảnh, trang tính khác).")


def _precheck(path: Path, suffix: str, limits: Limits) -> None:
    """The extractor's own checks that come before reading, each refusal worded for the officer."""
    if suffix == ".csv":
        try:
            decode_csv(path.read_bytes())
        except LayoutError as exc:
            raise Refused("Tệp CSV không đúng bảng mã: hãy lưu lại bằng Excel với kiểu “CSV UTF-8 (Comma delimited)”.",
                          str(exc)) from None
    else:
        try:
            check_zip(path, limits)
        except LayoutError as exc:
            text = str(exc)
            if "zip bomb" in text:
                raise Refused("Tệp có cấu trúc nén bất thường (giải nén ra dung lượng rất lớn, dấu hiệu “zip bomb”): "
                              "tệp bị từ chối và không được mở.", text) from None
            raise Refused("Tệp không phải sổ tính Excel (.xlsx) hợp lệ hoặc đã bị hỏng: hãy mở bằng Excel và lưu lại.",
                          text) from None
    try:
        sheets = load_sheets(path, limits)
    except LayoutError as exc:
        raise Refused(_layout_message(str(exc)), str(exc)) from None
    for sheet in sheets:
        for (r, c), value in sheet.cells.items():
            if not isinstance(value, str):
                continue
            text = value.strip().lower()
            if _CITIZEN_ID.search(value) or _PHONE.search(value) or any(text.startswith(h) for h in _PERSONAL_HEADERS):
                raise Refused(f"Trang {sheet.title!r}, dòng {r}, cột {_letter(c)} có vẻ chứa thông tin cá nhân (số căn "
                              "cước, số điện thoại hoặc họ tên người nộp hồ sơ). Biểu 06 chỉ có số lượng hồ sơ: hãy xoá "
                              "thông tin này rồi tải lên lại; tệp chưa được lưu.")


def _layout_message(detail: str) -> str:
    if "no sheet has the Biểu 06" in detail or "no field rows" in detail:
        return ("Không tìm thấy bảng Biểu 06 trong tệp (biểu trống hoặc thiếu dòng số thứ tự cột (1) … (14)): hãy dùng "
                "biểu mẫu tải về từ trang này.")
    if "no period" in detail:
        return "Biểu không ghi kỳ báo cáo (dòng “Từ ngày … đến ngày …”): hãy dùng biểu mẫu tải về từ trang này."
    if "no unit code" in detail:
        return "Biểu không ghi mã đơn vị (“mã ĐVHC: …”): hãy dùng biểu mẫu tải về từ trang này."
    if "headed" in detail:
        return "Các cột của biểu bị đổi chỗ so với mẫu Biểu 06: hãy dùng biểu mẫu tải về từ trang này."
    return "Không đọc được tệp như một Biểu 06: hãy dùng biểu mẫu tải về từ trang này."


def _check_identity(landed: list[dict], unit_code: str, period: Period) -> None:
    units = sorted({rec["unit_code"] for rec in landed})
    if units != [unit_code]:
        raise Refused(f"Biểu này là của đơn vị mã {', '.join(units)}, không phải của đơn vị bạn (mã {unit_code}): "
                      "mỗi đơn vị chỉ nộp biểu của chính mình. Hãy tải biểu mẫu của đơn vị từ trang này.")
    periods = sorted({(rec["period_start"], rec["period_end"]) for rec in landed})
    if periods != [(period.start, period.end)]:
        start, end = periods[0]
        raise Refused(f"Biểu ghi kỳ từ ngày {start:%d/%m/%Y} đến ngày {end:%d/%m/%Y}, nhưng đường dẫn này dùng để nộp "
                      f"kỳ {period.label} (từ ngày {period.start:%d/%m/%Y} đến ngày {period.end:%d/%m/%Y}). "
                      "Hãy tải biểu mẫu của đúng kỳ từ trang này.")


def validate(rows: list[dict], reading: list, settings: Settings, units) -> list[dict]:
    """The offline validator's findings (as `tthc validate --format json` lists them)."""
    buffer = io.StringIO()
    out = FindingsOut("json", buffer)
    with StreamingValidation(units, [f["code"] for f in settings.fields], settings.period_convention, out) as validation:
        validation.add(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), reading)
        validation.finish()
    out.close()
    return json.loads(buffer.getvalue())


def _placed(item: dict, by_row: dict[int, str]) -> CellFinding:
    """A finding on its cell: the figure it names (the total of an identity, or the single
    figure a diagnosis corrects), with the corrected value when the diagnosis has one; the
    reader's own words (English) put in Vietnamese where the officer must act on them."""
    field_code = item.get("field_code") or ""
    figure = None
    suggested = None
    fix = item.get("suggested_fix") or {}
    columns = [c for c in item.get("columns") or [] if c in FIGURES]
    if len(fix) == 1:
        figure, suggested = next(iter(fix.items()))
    elif columns:
        figure = columns[0]
    location = item.get("location") or ""
    row = letter = None
    if m := _ROW_IN_LOCATION.search(location):
        row, letter = int(m.group(1)), m.group(2)
        field_code = by_row.get(row, field_code)
        if letter:
            figure = figure or _figure_at(letter)
    parts = [f"Dòng {row}" if row else (item.get("file") or "")]
    if letter and row:
        parts.append(f"ô {letter}{row}")
    if figure is not None:
        parts.append(FIGURE_LABELS[figure])
    return CellFinding(item["severity"], item["check"], _in_vietnamese(item["check"], item["message"]),
                       ", ".join(p for p in parts if p), field_code or None, figure, suggested, row)


_UNCACHED = re.compile(r"(\d+) formulas have no cached value")
_TYPED_TOTAL = re.compile(r"typed total (\d+) disagrees with the form's formula (=\S+) = (\d+)")
_TYPED_SUM = re.compile(r"typed total (\d+) disagrees with the sum of the field rows \((=SUM\([^)]*\)) = (\d+)\)")
_NOT_A_COUNT = re.compile(r": (?:\w+: )?('.*'|\S+) is (?:not a whole number|negative|a boolean)")
_APPROXIMATE = re.compile(r": (?:\w+: )?('.*'|\S+) is (an approximate figure|a number written in words)")
_READING = re.compile(r": (?:\w+: )?('.*?'|\S+) (has .*?), read as (\d+)$")


def _in_vietnamese(check: str, message: str) -> str:
    """The spreadsheet reader's messages the officer acts on, in Vietnamese; the validator's are already."""
    if m := _UNCACHED.search(message):
        return (f"{m.group(1)} ô công thức chưa có giá trị lưu sẵn (tệp chưa được Excel tính lại khi lưu): giá trị "
                "được tính từ các ô thành phần.")
    if m := _TYPED_TOTAL.search(message) or _TYPED_SUM.search(message):
        return (f"Ô tổng được gõ tay số {m.group(1)}, khác công thức của biểu {m.group(2)} = {m.group(3)}: hãy xem lại "
                "số đã gõ, hoặc trả lại công thức.")
    if check == "schema.count_approximate" and (m := _APPROXIMATE.search(message)):
        kind = "approximate" if m.group(2).startswith("an approximate") else "words"
        return (f"Ô có giá trị {m.group(1)}, không phải một số nguyên không âm: {APPROXIMATIONS_VI[kind]} "
                "(ví dụ 1.250 hoặc 1250).")
    if check == "schema.count_reading" and (m := _READING.search(message)):
        said = next((vi for en, vi in READINGS.values() if en == m.group(2)), m.group(2))
        return f"Ô có giá trị {m.group(1)} {said}: đã đọc là {m.group(3)}, hãy kiểm tra lại."
    if check == "schema.count_unreadable" and (m := _NOT_A_COUNT.search(message)):
        return (f"Ô có giá trị {m.group(1)}, không phải một số nguyên không âm: hãy gõ số hồ sơ bằng chữ số "
                "(ví dụ 1.250 hoặc 1250).")
    return message


def _figure_at(letter: str) -> str | None:
    """The figure of a column letter of the project's own form (C = (3) … N = (14))."""
    index = ord(letter) - ord("C")
    return FIGURES[index] if len(letter) == 1 and 0 <= index < len(FIGURES) else None


def _letter(column: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(column)
