"""The national-portal sync shape (../shared/domain.md §5) is a standard: its wire field
names, key, update field, date stamps, how it lands and which canonical column each field
is. The `http_api` extractor, the national simulator and the sample API server speak it."""
from __future__ import annotations

import pyarrow as pa

# Wire fields kept at the boundary; any other field (ChuHoSo, SoGiayToChuHoSo, SoDienThoai,
# DiaChi, Email, …) is dropped.
KEPT_FIELDS = (
    "MaHoSo", "MaTTHC", "MaLinhVuc", "MaCoQuan", "KenhThucHien", "NgayTiepNhan", "NgayHenTra",
    "NgayKetThucXuLy", "NgayTra", "NgayCapNhat", "TrangThaiHoSo", "PhiLePhi",
    "DuocThanhToanTrucTuyen", "DanhSachGiayToKetQua",
)
# landed as sent: every kept field as text, in this order
LANDING_SCHEMA = pa.schema([pa.field(name, pa.string()) for name in KEPT_FIELDS])
KEY = "MaHoSo"  # the dossier code: one record per dossier, landings ordered by it
UPDATED = "NgayCapNhat"  # the source's own update moment (incremental extraction)
STAMP_FORMAT = "%Y%m%d%H%M%S"  # dates are yyyyMMddHHmmss in Asia/Ho_Chi_Minh time
# canonical column (tthc.model) → wire field
PORTAL_COLUMNS = {
    "dossier_id": "MaHoSo", "procedure_code": "MaTTHC", "field_code": "MaLinhVuc", "unit_code": "MaCoQuan",
    "channel": "KenhThucHien", "received_at": "NgayTiepNhan", "due_at": "NgayHenTra",
    "finished_at": "NgayKetThucXuLy", "returned_at": "NgayTra", "status": "TrangThaiHoSo",
    "fee_amount": "PhiLePhi", "paid_online": "DuocThanhToanTrucTuyen",
    "results_digitised": "DanhSachGiayToKetQua", "updated_at": "NgayCapNhat",
}
PAID_ONLINE_CODES = ("1", "2")  # DuocThanhToanTrucTuyen: 1 national portal, 2 local gateway
DIGITISED_FIELD = "DuocSoHoa"  # in each document of DanhSachGiayToKetQua: 1 digitised
