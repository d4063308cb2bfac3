"""The call-back list for the TTHC control officer: per unit, whom to call about which figures,
what was reported and what it probably should be (CSV and .xlsx, in Vietnamese)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tthc.cells import XLSX_TEXT_OPTIONS, inert_frame
from tthc.findings import Finding
from tthc.form import FIGURE_LABELS, LEVEL_LABELS, SEVERITY_LABELS, SEVERITY_RANK
from tthc.model import COLUMN_LABELS

COLUMNS = ["STT", "Mã đơn vị", "Tên đơn vị", "Cấp", "Liên hệ", "Mức độ", "Lĩnh vực", "Chỉ tiêu", "Số đã báo cáo",
           "Số có thể đúng", "Nội dung", "Mã kiểm tra", "Nguồn", "Vị trí"]
# a finding is worth a call when a person at the unit can confirm or correct a figure
CALL_CHECKS_INFO = ("diagnosis.typing_error",)


def contact(level: str | None, name: str | None) -> str:
    if level == "department":
        return f"Bộ phận Một cửa, {name}" if name else "Bộ phận Một cửa của đơn vị"
    if level in ("district", "commune"):
        return f"Công chức phụ trách kiểm soát TTHC, UBND {name}" if name else "UBND đơn vị"
    return "Văn phòng UBND tỉnh"


def callback_rows(findings: list[Finding], units: pd.DataFrame) -> pd.DataFrame:
    info = {u.unit_code: u for u in units.itertuples(index=False)}
    rows = []
    for f in findings:
        if f.unit_code is None or (f.severity == "info" and f.check_id not in CALL_CHECKS_INFO):
            continue
        unit = info.get(f.unit_code)
        level = getattr(unit, "level", None)
        name = getattr(unit, "unit_name", None)
        fix = f.suggested_fix or {}
        rows.append({
            "Mã đơn vị": f.unit_code, "Tên đơn vị": name or "(không có trong danh mục)",
            "Cấp": LEVEL_LABELS.get(level, level or ""), "Liên hệ": contact(level, name),
            "Mức độ": SEVERITY_LABELS[f.severity], "Lĩnh vực": f.field_code or "",
            "Chỉ tiêu": ", ".join(FIGURE_LABELS.get(c) or COLUMN_LABELS.get(c, c) for c in f.columns),
            "Số đã báo cáo": _figures(f.observed),
            "Số có thể đúng": ", ".join(f"{FIGURE_LABELS.get(k, k)} = {v:,}".replace(",", ".") for k, v in fix.items()),
            "Nội dung": f.message, "Mã kiểm tra": f.check_id, "Nguồn": f.source_id or "", "Vị trí": f.location or "",
            "_rank": SEVERITY_RANK[f.severity],
        })
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != "STT"] + ["_rank"])
    frame = frame.sort_values(["Mã đơn vị", "_rank", "Lĩnh vực", "Mã kiểm tra"], kind="stable").drop(columns="_rank")
    frame.insert(0, "STT", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


# the call-back list as the warehouse keeps it (quality.callback): English column names
WAREHOUSE_COLUMNS = {"Mã đơn vị": "unit_code", "Tên đơn vị": "unit_name", "Cấp": "unit_level", "Liên hệ": "contact",
                     "Mức độ": "severity", "Lĩnh vực": "field_code", "Chỉ tiêu": "figure_labels",
                     "Số đã báo cáo": "reported", "Số có thể đúng": "probable", "Nội dung": "message",
                     "Mã kiểm tra": "check_id", "Nguồn": "source_id", "Vị trí": "location"}


def callback_table(findings: list[Finding], units: pd.DataFrame) -> pd.DataFrame:
    """`callback_rows` under the warehouse's column names, severity as its code."""
    frame = callback_rows(findings, units).drop(columns="STT").rename(columns=WAREHOUSE_COLUMNS)
    codes = {label: code for code, label in SEVERITY_LABELS.items()}
    frame["severity"] = frame["severity"].map(codes)
    return frame


def _figures(observed: str | None) -> str:
    try:
        values = json.loads(observed) if observed else None
    except ValueError:
        return observed or ""
    if isinstance(values, dict):
        return ", ".join(f"{FIGURE_LABELS.get(k, k)} = {v}" for k, v in values.items())
    return "" if values is None else str(values)


def write_callback_list(findings: list[Finding], units: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    frame = callback_rows(findings, units)
    csv_path, xlsx_path = folder / "danh_sach_goi_lai.csv", folder / "danh_sach_goi_lai.xlsx"
    inert_frame(frame).to_csv(csv_path, index=False, encoding="utf-8-sig")
    with pd.ExcelWriter(xlsx_path, engine="xlsxwriter", engine_kwargs={"options": XLSX_TEXT_OPTIONS}) as writer:
        frame.to_excel(writer, sheet_name="Danh sách gọi lại", index=False, startrow=1)
        sheet = writer.sheets["Danh sách gọi lại"]
        sheet.write(0, 0, "DANH SÁCH ĐƠN VỊ CẦN GỌI LẠI ĐỂ XÁC NHẬN SỐ LIỆU BIỂU 06")
        for i, width in enumerate([5, 14, 28, 14, 40, 26, 9, 30, 30, 30, 90, 26, 20, 30]):
            sheet.set_column(i, i, width)
        sheet.autofilter(1, 0, max(1, len(frame) + 1), len(frame.columns) - 1)
        sheet.freeze_panes(2, 0)
    return csv_path, xlsx_path
