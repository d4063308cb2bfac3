"""Findings: what a check found, where, and how sure. One shape for every stage."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

import pyarrow as pa

from tthc.checks import CHECKS
from tthc.form import SEVERITIES


FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("check_id", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("source_id", pa.string()),
        pa.field("unit_code", pa.string()),
        pa.field("period_start", pa.date32()),
        pa.field("period_end", pa.date32()),
        pa.field("field_code", pa.string()),
        pa.field("basis", pa.string()),
        pa.field("columns", pa.string()),  # JSON list of the figures involved
        pa.field("observed", pa.string()),
        pa.field("expected", pa.string()),
        pa.field("message", pa.string()),
        pa.field("suggested_fix", pa.string()),  # JSON object or null
        pa.field("location", pa.string()),  # file, sheet, row, column when known
    ]
)


@dataclass
class Finding:
    check_id: str
    severity: str
    message: str
    period_start: date | None = None
    period_end: date | None = None
    source_id: str | None = None
    unit_code: str | None = None
    field_code: str | None = None
    basis: str | None = None
    columns: list[str] = field(default_factory=list)
    observed: str | None = None
    expected: str | None = None
    suggested_fix: dict | None = None
    location: str | None = None

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {SEVERITIES}")
        check = CHECKS.get(self.check_id)
        if check is None:
            raise ValueError(f"check {self.check_id!r} is not in the registry (tthc/checks.py)")
        if not check.allows(self.severity):
            raise ValueError(f"check {self.check_id!r} is {check.severity}, not {self.severity}")

    def as_row(self) -> dict:
        row = asdict(self)
        row["columns"] = json.dumps(self.columns, ensure_ascii=False)
        row["suggested_fix"] = json.dumps(self.suggested_fix, ensure_ascii=False) if self.suggested_fix else None
        for key in ("observed", "expected"):
            row[key] = None if row[key] is None else str(row[key])
        return row

    @classmethod
    def from_row(cls, row: dict) -> Finding:
        """The finding a row of FINDINGS_SCHEMA holds (its `as_row`)."""
        values = {k: (None if v is None or v != v else v) for k, v in row.items() if k in cls.__dataclass_fields__}
        values["columns"] = json.loads(values.get("columns") or "[]")
        values["suggested_fix"] = json.loads(values["suggested_fix"]) if values.get("suggested_fix") else None
        return cls(**values)


def finding(check_id: str, message: str, period_start: date | None = None, period_end: date | None = None, *,
            severity: str | None = None, **where) -> Finding:
    """A finding of a registered check, with the check's severity unless it allows another."""
    return Finding(check_id, severity or CHECKS[check_id].severity, message, period_start, period_end, **where)


def findings_table(findings: list[Finding]) -> pa.Table:
    rows = [f.as_row() for f in findings]
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)
