"""Every check the pipeline reports: its stable id, its severity and what it means to the
control officer. Every finding names one of these (tthc.findings refuses any other id), from
extraction to reconciliation.

Critical checks keep the unit-period out of the published tables; warnings are published with
a quality flag; info is for the analyst. Ids never change meaning: new checks get new ids.
"""
from __future__ import annotations

from dataclasses import dataclass



@dataclass(frozen=True)
class Check:
    id: str
    severity: str
    title: str  # Vietnamese, for the control officer
    # other severities a finding of this check may take, and when (said in `title`'s terms)
    also: tuple[str, ...] = ()

    def allows(self, severity: str) -> bool:
        return severity == self.severity or severity in self.also


_CHECKS = [
    # extraction (what the sources sent)
    Check("config.unit_repeated", "warning",
          "Mã đơn vị khai báo nhiều lần trong tệp cấu hình của tỉnh: chỉ dùng dòng đầu tiên"),
    Check("config.split_records", "warning",
          "Khai báo đơn vị nhận hồ sơ của xã cũ bị chia (reform.split_records) không khớp bảng chuyển đổi: không dùng"),
    Check("extract.source_missing", "warning", "Nguồn số liệu không lấy được trong kỳ (lỗi khi trích xuất hoặc chưa trích xuất)"),
    Check("extract.stale_landing", "warning",
          "Nguồn số liệu lỗi khi trích xuất lại: dùng lần trích xuất thành công gần nhất của kỳ (số liệu có thể "
          "chưa cập nhật)"),
    Check("extract.source_empty", "warning",
          "Nguồn số liệu trích xuất được nhưng không có bản ghi nào trong kỳ: các đơn vị nguồn này phụ trách "
          "không được công bố số 0 từ nguồn này"),
    Check("extract.rejected_record", "warning", "Bản ghi hồ sơ của nguồn không đưa vào được (ví dụ thiếu mã hồ sơ)"),
    Check("extract.unreadable_input", "warning",
          "Ô số liệu không đọc được (cảnh báo); tệp biểu mẫu bị từ chối cả tệp (nghiêm trọng)", also=("critical",)),
    Check("extract.input_warning", "warning",
          "Điểm bất thường trong tệp biểu mẫu (ví dụ tổng gõ tay khác công thức của biểu mẫu)"),
    Check("records.unreadable_value", "warning", "Hồ sơ có giá trị không đọc được (ngày, trạng thái, kênh, phí, mã)"),
    Check("records.date_in_future", "warning", "Hồ sơ có ngày sau thời điểm chạy (ngày trong tương lai)"),
    Check("records.date_implausible", "warning",
          "Hồ sơ có ngày trước mốc hợp lý (reliability.plausible_from, mặc định 01/01/2000): hồ sơ vẫn được giữ và "
          "tính theo ngày đã ghi, đề nghị đơn vị sửa lại"),
    # the official unit lists (checked when loaded)
    Check("reference.conversion_mismatch", "warning",
          "Dòng của bảng chuyển đổi ĐVHC mới – cũ không khớp danh mục ĐVHC trước 01/7/2025: mã không có trong "
          "danh mục hoặc tên của một đơn vị khác (cảnh báo, có thể sai mã); cùng tên viết khác chính tả hoặc đổi "
          "cấp (thông tin)", also=("info",)),
    Check("reference.correction_applied", "info",
          "Dòng của bảng chuyển đổi ĐVHC đã được sửa theo tệp hiệu chỉnh của tỉnh (kèm lý do)"),
    Check("reference.correction_refused", "warning",
          "Dòng của tệp hiệu chỉnh bảng chuyển đổi ĐVHC không áp dụng được (sai dạng, thiếu lý do, hoặc dòng của "
          "bảng chính thức đã khác)"),
    # schema and types
    Check("schema.key_present", "critical", "Thiếu mã đơn vị hoặc mã lĩnh vực"),
    Check("schema.count_unreadable", "critical", "Ô số liệu không phải là một số nguyên không âm"),
    Check("findings.capped", "info",
          "Quá nhiều phát hiện cùng loại: chỉ liệt kê những phát hiện đầu tiên, số còn lại được đếm (mức độ là của "
          "loại phát hiện bị giới hạn)", also=("warning", "critical")),
    Check("schema.count_reading", "warning",
          "Ô số liệu viết khác dạng chuẩn (dấu phẩy hoặc dấu cách phân cách hàng nghìn, số 0 ở đầu): đã đọc "
          "theo cách ghi trong phát hiện, đề nghị đơn vị kiểm tra"),
    Check("schema.count_approximate", "critical",
          "Ô số liệu là số ước lượng hoặc viết bằng chữ, không phải số đếm: số liệu để trống, không công bố"),
    Check("schema.layout_note", "warning", "Biểu mẫu có điểm bất thường khi đọc (ví dụ trang tính bị ẩn)"),
    Check("schema.key_unique", "critical", "Một đơn vị, kỳ, lĩnh vực có nhiều hơn một dòng số liệu"),
    Check("figures.non_negative", "critical", "Số liệu âm: số hồ sơ không thể nhỏ hơn 0"),
    Check("period.convention", "critical", "Ngày đầu, ngày cuối kỳ báo cáo không khớp quy ước chốt số liệu của tỉnh",
          also=("warning",)),
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
    # identities the figures real reports print beside the form's add (tthc.form.EXTRA_SUM_IDENTITIES)
    Check("identity.early_on_time", "critical",
          "Số giải quyết đúng và trước hạn khác tổng trước hạn (8) + đúng hạn (9)"),
    Check("identity.resolved_merged", "critical",
          "Tổng số đã giải quyết (7) khác tổng đúng và trước hạn + quá hạn (10)"),
    Check("identity.received_new", "critical", "Tổng số nhận giải quyết (3) khác tổng tiếp nhận mới + từ kỳ trước (6)"),
    Check("identity.new_channels", "critical",
          "Số tiếp nhận mới khác tổng trực tuyến (4) + trực tiếp, bưu chính (5)"),
    Check("identity.direct_postal", "critical",
          "Số nhận trực tiếp, bưu chính (5) khác tổng nhận trực tiếp + nhận qua bưu chính"),
    Check("identity.unchecked", "info", "Không kiểm tra được đẳng thức vì thiếu số liệu"),
    Check("identity.balance_approximate", "info",
          "Thiếu số trả lại, rút, dừng xử lý (14): cân đối (3) = (7) + (11) + (14) chỉ kiểm tra được gần đúng"),
    Check("diagnosis.typing_error", "info", "Chẩn đoán lỗi gõ nhầm"),
    # across periods and levels
    Check("continuity.carried_over", "warning", "Số từ kỳ trước (6) khác số đang giải quyết (11) của kỳ trước"),
    Check("continuity.handover", "warning",
          "Bàn giao hồ sơ khi sắp xếp đơn vị hành chính không khớp: số đang giải quyết (11) của các đơn vị cũ cuối "
          "kỳ trước cải cách khác số từ kỳ trước (6) của các đơn vị tiếp nhận đầu kỳ sau (hồ sơ bị mất hoặc bị tính "
          "hai lần)"),
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
    Check("records.unit_unknown", "critical",
          "Hồ sơ ghi mã đơn vị không có trong danh mục đơn vị đang có hiệu lực (mã lạ hoặc mã riêng của phần mềm "
          "chưa chuyển đổi): không tính được cho đơn vị nào"),
    Check("records.old_unit_code", "info",
          "Hồ sơ của kỳ sau sắp xếp đơn vị hành chính còn ghi mã đơn vị cũ: đã tính cho đơn vị tiếp nhận theo bảng "
          "chuyển đổi (không bỏ, không coi là đơn vị mới), hoặc là bản ghi cũ của hồ sơ mà phần mềm của đơn vị "
          "tiếp nhận đã báo cáo"),
    Check("records.old_unit_split", "warning",
          "Hồ sơ của kỳ sau sắp xếp đơn vị hành chính còn ghi mã của xã cũ đã chia cho nhiều xã mới: không xác định "
          "được đơn vị tiếp nhận (khai báo reform.split_records)"),
    Check("records.handed_over_later", "info",
          "Hồ sơ tiếp nhận trước sắp xếp đơn vị hành chính, được nhập vào phần mềm của đơn vị tiếp nhận khi bàn "
          "giao: kỳ trước sắp xếp không tính cho đơn vị tiếp nhận (đơn vị cũ báo cáo)"),
    Check("records.unknown_procedure", "warning", "Hồ sơ thiếu mã thủ tục hoặc mã thủ tục không đúng dạng của CSDL quốc gia"),
    # completeness
    Check("completeness.no_dossiers", "info", "Đơn vị không có hồ sơ nào trong kỳ (đã báo cáo, số liệu bằng 0)"),
    Check("completeness.missing_report", "warning", "Đơn vị chưa có số liệu của kỳ từ bất kỳ nguồn nào"),
    Check("completeness.empty_row", "warning", "Dòng số liệu bỏ trống toàn bộ: coi là chưa báo cáo, không phải bằng 0"),
    # plausibility and cross-checks
    Check("figures.outlier", "critical",
          "Số liệu vượt xa mọi mốc đối chiếu có được của đơn vị (hồ sơ trên phần mềm, các quý trước, các đơn vị "
          "cùng cấp, phiên bản đã công bố của kỳ)", also=("warning",)),
    Check("plausibility.history", "warning", "Số liệu thay đổi bất thường so với các quý trước của chính đơn vị"),
    Check("plausibility.peers", "info", "Tỷ lệ đúng hạn khác thường so với các đơn vị cùng cấp"),
    Check("plausibility.on_time_all", "info", "Tỷ lệ giải quyết đúng hạn đúng 100% trên nhiều hồ sơ"),
    Check("crosscheck.records_vs_reported", "warning",
          "Số tự báo cáo thấp hơn số hồ sơ phần mềm một cửa ghi nhận được (vượt ngưỡng cho phép)"),
    # reconciliation
    Check("reconcile.incomplete_coverage", "warning",
          "Chỉ có số liệu từ phần mềm một cửa chưa đầy đủ, không có báo cáo tự lập"),
    Check("reconcile.unplaced_records", "critical",
          "Đơn vị không có hồ sơ nào từ nguồn phụ trách trong khi nguồn đó có hồ sơ chưa xác định được đơn vị: "
          "chưa công bố (không công bố số 0)"),
    Check("reconcile.overlapping_sources", "warning",
          "Nhiều nguồn cùng khai báo phụ trách đầy đủ một đơn vị: dùng nguồn có hồ sơ của đơn vị (cảnh báo); "
          "nhiều nguồn cùng có hồ sơ, hoặc nguồn có thể có hồ sơ không lấy được: chưa công bố (nghiêm trọng)",
          also=("critical",)),
    Check("reconcile.sources_disagree", "warning", "Số liệu tự báo cáo khác số liệu từ phần mềm vượt ngưỡng cho phép"),
]
CHECKS: dict[str, Check] = {c.id: c for c in _CHECKS}
IDENTITY_CHECKS = {"received_total": "identity.received", "resolved_total": "identity.resolved",
                   "pending_total": "identity.pending"}
BALANCE_CHECK = "identity.balance"
EXTRA_IDENTITY_CHECKS = {key: f"identity.{key}" for key in
                         ("early_on_time", "resolved_merged", "received_new", "new_channels", "direct_postal")}


def title(check_id: str) -> str:
    return CHECKS[check_id].title if check_id in CHECKS else check_id
