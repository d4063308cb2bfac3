"""The canonical model every stage speaks (documented in docs/canonical-model.md).

Dossier records carry no personal data: extractors drop it at the boundary. Biểu 06 rows
use the canonical column names of the form; a figure that was not reported is null, never 0.
"""
from __future__ import annotations

import pyarrow as pa

from tthc.form import FACT_FIGURES

# National-portal status codes (TrangThaiHoSo), used as the canonical ones.
STATUS_NEW = 1
STATUS_ACCEPTED = 2
STATUS_REFUSED = 3
STATUS_PROCESSING = 4
STATUS_WAITING_DOCUMENTS = 5
STATUS_WAITING_FEES = 6
STATUS_WITHDRAWN = 7
STATUS_STOPPED = 8
STATUS_FINISHED = 9
STATUS_RETURNED = 10

# Never taken on for processing: not counted as received.
STATUSES_NOT_TAKEN_ON = (STATUS_NEW, STATUS_REFUSED)
STATUSES_RESOLVED = (STATUS_FINISHED, STATUS_RETURNED)
STATUSES_RETURNED_WITHDRAWN = (STATUS_WITHDRAWN, STATUS_STOPPED)
STATUSES_FINISHED = STATUSES_RESOLVED + STATUSES_RETURNED_WITHDRAWN

CHANNELS = ("in_person", "online", "postal")

DOSSIER_SCHEMA = pa.schema(
    [
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("dossier_id", pa.string(), nullable=False),
        pa.field("procedure_code", pa.string()),
        pa.field("field_code", pa.string()),
        pa.field("unit_code", pa.string(), nullable=False),
        pa.field("channel", pa.string()),
        # local time of the province (Asia/Ho_Chi_Minh), without zone
        pa.field("received_at", pa.timestamp("s")),
        pa.field("due_at", pa.timestamp("s")),
        pa.field("finished_at", pa.timestamp("s")),
        pa.field("returned_at", pa.timestamp("s")),
        # when the dossier was last paused (supplement requested, fees, stop); NULL when never or unknown
        pa.field("paused_at", pa.timestamp("s")),
        pa.field("status", pa.int16()),
        pa.field("fee_amount", pa.int64()),
        pa.field("paid_online", pa.bool_()),
        pa.field("results_digitised", pa.bool_()),
        pa.field("updated_at", pa.timestamp("s")),
        # when the record was entered in this software (NULL when the source does not say): a dossier
        # received before the reform and entered after it was handed over to its unit then
        pa.field("entered_at", pa.timestamp("s")),
    ]
)
DOSSIER_COLUMNS = DOSSIER_SCHEMA.names
# How what officers read (the report, the call-back list) names a column a finding points at that is not
# a figure of the form: a dossier record's fields, and a unit's or a period's
COLUMN_LABELS = {
    "source_id": "Nguồn dữ liệu", "dossier_id": "Mã hồ sơ", "procedure_code": "Mã thủ tục",
    "field_code": "Lĩnh vực", "unit_code": "Mã đơn vị", "channel": "Hình thức tiếp nhận",
    "received_at": "Ngày tiếp nhận", "due_at": "Ngày hẹn trả", "finished_at": "Ngày kết thúc xử lý",
    "returned_at": "Ngày trả kết quả", "paused_at": "Ngày tạm dừng", "status": "Trạng thái hồ sơ",
    "fee_amount": "Phí, lệ phí", "paid_online": "Thanh toán trực tuyến", "results_digitised": "Số hóa kết quả",
    "updated_at": "Ngày cập nhật", "entered_at": "Ngày nhập vào phần mềm",
    "unit_name": "Tên đơn vị", "unit_level": "Cấp", "period_start": "Ngày đầu kỳ", "period_end": "Ngày cuối kỳ",
}
assert set(DOSSIER_COLUMNS) <= set(COLUMN_LABELS)
# A dossier file with one record per (source_id, dossier_id) says so in its Parquet metadata
# (canonicalize writes it so): a reader may then take records for dossiers without checking.
DOSSIER_KEY = ("source_id", "dossier_id")
KEYED_DOSSIER_SCHEMA = DOSSIER_SCHEMA.with_metadata({"tthc.unique_key": ",".join(DOSSIER_KEY)})



def has_unique_dossier_key(schema: pa.Schema) -> bool:
    return (schema.metadata or {}).get(b"tthc.unique_key") == ",".join(DOSSIER_KEY).encode()


BIEU06_SCHEMA = pa.schema(
    [
        pa.field("unit_code", pa.string(), nullable=False),
        pa.field("period_start", pa.date32(), nullable=False),
        pa.field("period_end", pa.date32(), nullable=False),
        pa.field("field_code", pa.string(), nullable=False),
        *[pa.field(name, pa.int64()) for name in FACT_FIGURES],
        # records: derived from dossier records; self_reported: typed by the unit
        pa.field("basis", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("landed_file", pa.string()),
    ]
)
BIEU06_COLUMNS = BIEU06_SCHEMA.names

# A published Decision 766 indicator row (core.published_indicators, publish.indicators_766).
INDICATOR_COLUMNS = ["unit_code", "unit_level", "indicator", "indicator_name", "numerator", "denominator",
                     "denominator_name", "value", "basis"]
