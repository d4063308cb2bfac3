"""Every validation check: its stable id, its severity and what it means to the control officer.

Critical checks keep the unit-period out of the published tables; warnings are published with
a quality flag; info is for the analyst. Ids never change meaning: new checks get new ids.
"""
from __future__ import annotations

from dataclasses import dataclass

from tthc.model import FIGURES, FORM_COLUMN_NUMBER


@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    title: str  # Vietnamese, for the control officer


_CHECKS = [
    # schema and types
    Check("schema.key_present", "critical", "Thiếu mã đơn vị hoặc mã lĩnh vực"),
    Check("schema.count_unreadable", "critical", "Ô số liệu không phải là một số nguyên không âm"),
    Check("schema.layout_note", "warning", "Biểu mẫu có điểm bất thường khi đọc (ví dụ trang tính bị ẩn)"),
    Check("schema.key_unique", "critical", "Một đơn vị, kỳ, lĩnh vực có nhiều hơn một dòng số liệu"),
    Check("figures.non_negative", "critical", "Số liệu âm: số hồ sơ không thể nhỏ hơn 0"),
    Check("period.convention", "critical", "Ngày đầu, ngày cuối kỳ báo cáo không khớp quy ước chốt số liệu của tỉnh"),
    Check("unit.known", "critical", "Mã đơn vị không có trong danh mục đơn vị hành chính đang có hiệu lực của kỳ báo cáo"),
    Check("field.known", "warning", "Mã lĩnh vực không có trong danh mục lĩnh vực"),
    # identities of the form (domain.md §3)
    Check("identity.received", "critical",
          "Tổng số nhận giải quyết (3) khác tổng trực tuyến (4) + trực tiếp, bưu chính (5) + từ kỳ trước (6)"),
    Check("identity.resolved", "critical",
          "Tổng số đã giải quyết (7) khác tổng trước hạn (8) + đúng hạn (9) + quá hạn (10)"),
    Check("identity.pending", "critical", "Tổng số đang giải quyết (11) khác tổng trong hạn (12) + quá hạn (13)"),
    Check("identity.balance", "warning",
          "Số nhận giải quyết (3) khác số đã giải quyết (7) + đang giải quyết (11) + trả lại, rút, dừng (14)"),
    Check("identity.unchecked", "info", "Không kiểm tra được đẳng thức vì thiếu số liệu"),
    Check("identity.balance_approximate", "info",
          "Thiếu số trả lại, rút, dừng xử lý (14): cân đối (3) = (7) + (11) + (14) chỉ kiểm tra được gần đúng"),
    Check("diagnosis.typing_error", "info", "Chẩn đoán lỗi gõ nhầm"),
    # across periods and levels
    Check("continuity.carried_over", "warning", "Số từ kỳ trước (6) khác số đang giải quyết (11) của kỳ trước"),
    Check("continuity.unchecked", "info", "Không kiểm tra được số từ kỳ trước: chưa có số liệu kỳ trước trong kho"),
    Check("rollup.total_row", "warning", "Dòng Tổng cộng khác tổng các lĩnh vực"),
    Check("rollup.units", "warning", "Số liệu của đơn vị cấp trên khác tổng số liệu các đơn vị trực thuộc"),
    # dossier records
    Check("records.due_before_received", "warning", "Hồ sơ có ngày hẹn trả trước ngày tiếp nhận"),
    Check("records.finished_before_received", "warning", "Hồ sơ có ngày kết thúc xử lý trước ngày tiếp nhận"),
    Check("records.finished_status", "warning",
          "Ngày kết thúc xử lý không khớp trạng thái hồ sơ (có ngày kết thúc khi chưa xong, hoặc xong mà không có ngày)"),
    Check("records.date_after_period_end", "warning", "Hồ sơ có ngày tiếp nhận sau ngày cuối kỳ báo cáo"),
    Check("records.duplicate_within_source", "warning", "Cùng một mã hồ sơ xuất hiện nhiều lần trong một nguồn"),
    Check("records.duplicate_across_sources", "warning", "Cùng một mã hồ sơ được báo cáo ở nhiều nguồn hoặc nhiều đơn vị"),
    Check("records.unknown_field", "warning", "Hồ sơ có mã lĩnh vực không có trong danh mục"),
    Check("records.unknown_procedure", "warning", "Hồ sơ thiếu mã thủ tục hoặc mã thủ tục không đúng dạng của CSDL quốc gia"),
    # completeness
    Check("completeness.no_dossiers", "info", "Đơn vị không có hồ sơ nào trong kỳ (đã báo cáo, số liệu bằng 0)"),
    Check("completeness.empty_row", "warning", "Dòng số liệu bỏ trống toàn bộ: coi là chưa báo cáo, không phải bằng 0"),
    # plausibility and cross-checks
    Check("plausibility.history", "warning", "Số liệu thay đổi bất thường so với các quý trước của chính đơn vị"),
    Check("plausibility.peers", "info", "Tỷ lệ đúng hạn khác thường so với các đơn vị cùng cấp"),
    Check("plausibility.on_time_all", "info", "Tỷ lệ giải quyết đúng hạn đúng 100% trên nhiều hồ sơ"),
    Check("crosscheck.records_vs_reported", "warning",
          "Số tự báo cáo thấp hơn số hồ sơ phần mềm một cửa ghi nhận được (vượt ngưỡng cho phép)"),
]
CHECKS: dict[str, Check] = {c.id: c for c in _CHECKS}
IDENTITY_CHECKS = {"received_total": "identity.received", "resolved_total": "identity.resolved",
                   "pending_total": "identity.pending"}
BALANCE_CHECK = "identity.balance"

# how the form names its columns, for messages: "Tổng số đã giải quyết (7)"
FIGURE_LABELS = {
    "received_total": "Tổng số nhận giải quyết (3)", "received_online": "Nhận trực tuyến (4)",
    "received_direct_postal": "Nhận trực tiếp, bưu chính (5)", "carried_over": "Từ kỳ trước (6)",
    "resolved_total": "Tổng số đã giải quyết (7)", "resolved_early": "Giải quyết trước hạn (8)",
    "resolved_on_time": "Giải quyết đúng hạn (9)", "resolved_late": "Giải quyết quá hạn (10)",
    "pending_total": "Tổng số đang giải quyết (11)", "pending_within_due": "Đang giải quyết trong hạn (12)",
    "pending_overdue": "Đang giải quyết quá hạn (13)", "returned_withdrawn": "Trả lại, rút, dừng xử lý (14)",
}
assert set(FIGURE_LABELS) == set(FIGURES) and all(f"({n})" in FIGURE_LABELS[f] for f, n in FORM_COLUMN_NUMBER.items())


def severity(check_id: str) -> str:
    return CHECKS[check_id].severity


def title(check_id: str) -> str:
    return CHECKS[check_id].title if check_id in CHECKS else check_id
