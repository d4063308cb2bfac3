"""The official unit lists checked when they are loaded: every row of the conversion table against
the pre-reform list (the code exists; the name is that code's unit, a Vietnamese spelling variant of
it, or another unit), and the province's corrections of wrong rows, each applied or refused."""
from __future__ import annotations

import pandas as pd

from tthc.findings import Finding, finding
from tthc.periods import Period
from tthc.units import Correction

# how an officer reads each kind of mismatch (tthc.units.check_conversion)
_KIND_TEXT = {
    "code_unknown": "mã xã cũ {old_code} không có trong danh mục ĐVHC trước cải cách",
    "level_changed": "danh mục ghi mã {old_code} là «{listed_name}»: cùng tên, khác cấp (đổi loại hình)",
    "spelling_variant": "danh mục ghi mã {old_code} là «{listed_name}»: cùng đơn vị, tên viết khác chính tả",
    "other_unit": "danh mục ghi mã {old_code} là «{listed_name}», một đơn vị khác (đổi tên hoặc sai mã)",
}
_SEVERITY = {"code_unknown": "warning", "other_unit": "warning", "level_changed": "info", "spelling_variant": "info"}
OLD_CODE_COLUMN = "Mã Xã cũ (cột 5)"


def conversion_findings(mismatches: pd.DataFrame, applied: list[Correction], refused: list[str], period: Period,
                        conversion_file: str, corrections_file: str | None) -> list[Finding]:
    """One finding per mismatching row, per correction applied and per correction refused."""
    out = []
    for row in mismatches.itertuples(index=False):
        message = (f"Bảng chuyển đổi {conversion_file} dòng {row.source_row} ({row.new_name} {row.new_code} ← "
                   f"{row.old_name} {row.old_code}): " + _KIND_TEXT[row.kind].format(**row._asdict()))
        if isinstance(row.likely_code, str):
            message += f"; «{row.old_name}» có mã {row.likely_code} trong cùng huyện: có thể sai mã"
        if _SEVERITY[row.kind] == "warning":
            message += ("; sửa bằng tệp hiệu chỉnh của tỉnh (conversion_corrections) nếu dòng này sai, "
                        "nếu không đơn vị cũ có thể không có đơn vị kế tiếp hoặc bị tính là chia tách")
        out.append(finding(
            "reference.conversion_mismatch", message, period.start, period.end, severity=_SEVERITY[row.kind],
            unit_code=row.old_code, observed=row.old_name, basis=row.kind,
            expected=row.likely_code if isinstance(row.likely_code, str) else row.listed_name,
            location=f"{conversion_file} row {row.source_row}, column {OLD_CODE_COLUMN}"))
    for line in applied:
        changes = ", ".join(f"{k} {line.was.get(k, '?')} → {v}" for k, v in line.set.items())
        out.append(finding(
            "reference.correction_applied",
            f"Bảng chuyển đổi {conversion_file} dòng {line.row} đã sửa theo {corrections_file} (dòng hiệu chỉnh "
            f"{line.number}): {changes}. Lý do: {line.reason}", period.start, period.end,
            unit_code=line.set.get("old_code") or line.was.get("old_code"), observed=str(line.was),
            expected=str(line.set), location=f"{corrections_file} correction {line.number}; {conversion_file} row {line.row}"))
    for problem in refused:
        out.append(finding("reference.correction_refused", f"Không áp dụng được dòng hiệu chỉnh: {problem}",
                           period.start, period.end, location=problem.split(":")[0]))
    return out
