"""GX suites for the Biểu 06 data contract, defined in code and kept in git.

Every expectation carries a stable check id (in `meta`) and a severity: critical checks gate
publishing, warnings are published with a flag, info is for the analyst.
"""
from __future__ import annotations

import os

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402

from tthc.model import BALANCE_IDENTITY, FIGURES, SUM_IDENTITIES  # noqa: E402

# what each check means, in the words the control officer reads (Vietnamese)
CHECK_MESSAGES = {
    "schema.key_present": "Thiếu mã đơn vị hoặc mã lĩnh vực",
    "figures.non_negative": "Số liệu âm: số hồ sơ không thể nhỏ hơn 0",
    "identity.received": "Tổng số nhận giải quyết (3) khác tổng trực tuyến (4) + trực tiếp, bưu chính (5) + từ kỳ trước (6)",
    "identity.resolved": "Tổng số đã giải quyết (7) khác tổng trước hạn (8) + đúng hạn (9) + quá hạn (10)",
    "identity.pending": "Tổng số đang giải quyết (11) khác tổng trong hạn (12) + quá hạn (13)",
    "identity.balance": "Số nhận giải quyết (3) khác số đã giải quyết (7) + đang giải quyết (11) + trả lại, rút (14)",
    "unit.known": "Mã đơn vị không có trong danh mục đơn vị hành chính đang có hiệu lực của kỳ báo cáo",
    "field.known": "Mã lĩnh vực không có trong danh mục lĩnh vực",
}
IDENTITY_CHECKS = {"received_total": "identity.received", "resolved_total": "identity.resolved",
                   "pending_total": "identity.pending"}


def gap_column(total: str) -> str:
    return f"gap_{total}"


BALANCE_GAP = "gap_balance"


def bieu06_suite(units_in_force: list[str], field_codes: list[str]) -> gx.ExpectationSuite:
    suite = gx.ExpectationSuite(name="bieu06_rows")

    def add(expectation, check_id: str, severity: str, columns: list[str]):
        expectation.meta = {"check_id": check_id, "columns": columns}
        expectation.severity = severity
        suite.add_expectation(expectation)

    for key in ("unit_code", "field_code"):
        add(gxe.ExpectColumnValuesToNotBeNull(column=key), "schema.key_present", "critical", [key])
    for name in FIGURES:
        add(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0), "figures.non_negative", "critical", [name])
    for total, parts in SUM_IDENTITIES.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=gap_column(total), min_value=0, max_value=0),
            IDENTITY_CHECKS[total], "critical", [total, *parts])
    total, parts = BALANCE_IDENTITY
    add(gxe.ExpectColumnValuesToBeBetween(column=BALANCE_GAP, min_value=0, max_value=0),
        "identity.balance", "warning", [total, *parts])
    add(gxe.ExpectColumnValuesToBeInSet(column="unit_code", value_set=sorted(units_in_force)),
        "unit.known", "critical", ["unit_code"])
    add(gxe.ExpectColumnValuesToBeInSet(column="field_code", value_set=sorted(field_codes)),
        "field.known", "warning", ["field_code"])
    return suite
