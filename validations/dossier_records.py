"""Dossier records: record-level checks as SQL in DuckDB over the canonical dossiers Parquet,
the GX suite on their counts, and the message of every check.

Records are never pulled into one pandas frame: DuckDB counts, per source and unit, the
records that break each rule (with a few example dossier ids), and only those counts go to
GX (`dossier_records_suite`) and into findings.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pandas as pd

from tthc import duck
from tthc.checks import title
from tthc.findings import Finding
from tthc.model import STATUSES_FINISHED, STATUS_REFUSED
from tthc.periods import Period
from validations.gx import ROW_ID, Failed, GxSession, adder, check_messages, gx, gxe, is_true

EXAMPLES = 5
# a refused dossier is finished at intake: it has a finishing moment too
FINISHED_KIND = ", ".join(str(s) for s in (*STATUSES_FINISHED, STATUS_REFUSED))
NATIONAL_PROCEDURE_CODE = r"^[0-9]+\.[0-9]{6}$"

# check id → (count column, dossier columns involved); each rule is a SQL condition below
RECORD_CHECKS = {
    "records.due_before_received": ("n_due_before_received", ["due_at", "received_at"]),
    "records.finished_before_received": ("n_finished_before_received", ["finished_at", "received_at"]),
    "records.finished_status": ("n_finished_status", ["finished_at", "status"]),
    "records.date_after_period_end": ("n_date_after_period_end", ["received_at"]),
    "records.unknown_field": ("n_unknown_field", ["field_code"]),
    "records.unknown_procedure": ("n_unknown_procedure", ["procedure_code"]),
    "records.duplicate_within_source": ("n_duplicate_within_source", ["dossier_id"]),
    "records.duplicate_across_sources": ("n_duplicate_across_sources", ["dossier_id"]),
}
_CONDITIONS = {
    "records.due_before_received": "due_at < received_at",
    "records.finished_before_received": "finished_at < received_at",
    "records.finished_status": f"(finished_at IS NOT NULL) <> coalesce(status IN ({FINISHED_KIND}), false)",
    "records.date_after_period_end": "received_at >= $after_end",
    "records.unknown_field": "field_code IS NULL OR field_code NOT IN (SELECT code FROM fields)",
    "records.unknown_procedure": f"procedure_code IS NULL OR NOT regexp_full_match(procedure_code, '{NATIONAL_PROCEDURE_CODE}')",
    "records.duplicate_within_source": "within_source > 1",
    "records.duplicate_across_sources": "across > 1",
}
# records a source lists under a unit code that is no unit in force for the period (an unknown
# code, or a vendor's own unit id its lookup could not resolve): counted per source and code,
# they are placed in no unit, so reconcile withholds the units that source covers and has none of
UNIT_CHECK = "records.unit_unknown"
UNIT_IN_FORCE = "unit_in_force"


def record_counts(dossiers: Path, period: Period, field_codes: list[str],
                  several_units: Path | None = None, units_in_force: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per source and unit: how many records break each rule, and example dossier ids.

    `several_units` is a Parquet file of the (source_id, dossier_id) that a source lists under
    more than one unit, found by canonicalize before de-duplication (which keeps one record per
    source and id, so the dossiers cannot show it). `units_in_force`: the unit codes of the
    period; column `unit_in_force` says whether the row's unit is one (all true without them)."""
    con = duck.connect()
    con.execute("SET threads TO 2")
    con.read_parquet(str(dossiers)).create_view("dossiers")
    con.register("fields", pd.DataFrame({"code": pd.Series(field_codes, dtype="string")}))
    if several_units is not None and several_units.exists():
        con.read_parquet(str(several_units)).create_view("several_units")
    else:
        con.execute("CREATE VIEW several_units AS SELECT NULL::VARCHAR AS source_id, NULL::VARCHAR AS dossier_id WHERE false")
    # a dossier id can only repeat across sources when there are several
    several_sources = con.execute("SELECT min(source_id) <> max(source_id) FROM dossiers").fetchall()[0][0]
    after_end = f"{period.end + timedelta(days=1)} 00:00:00"
    counts = ",\n".join(f"count(*) FILTER (WHERE {cond}) AS {RECORD_CHECKS[c][0]}" for c, cond in _CONDITIONS.items())
    # the first ids in order, kept by a bounded aggregate (not a list of every failing record)
    examples = ",\n".join(f"min(dossier_id, {EXAMPLES}) FILTER (WHERE {cond}) AS ex_{RECORD_CHECKS[c][0]}"
                          for c, cond in _CONDITIONS.items())
    across = ("SELECT dossier_id, count(*) AS across FROM dossiers GROUP BY dossier_id HAVING count(*) > 1"
              if several_sources else "SELECT NULL::VARCHAR AS dossier_id, 0 AS across WHERE false")
    # how the dossiers of records.finished_status split: the message says what the figures did with each
    without_date = f"finished_at IS NULL AND status IN ({FINISHED_KIND})"
    counts += (f",\ncount(*) FILTER (WHERE {without_date}) AS n_finished_without_date"
               f",\ncount(*) FILTER (WHERE {without_date} AND returned_at IS NULL) AS n_finished_without_any_date")
    sql = f"""
        WITH across AS ({across}),
        flagged AS (
            SELECT d.*, coalesce(a.across, 1) AS across, CASE WHEN w.dossier_id IS NULL THEN 1 ELSE 2 END AS within_source
            FROM dossiers d
            LEFT JOIN across a USING (dossier_id)
            LEFT JOIN several_units w ON w.source_id = d.source_id AND w.dossier_id = d.dossier_id
        )
        SELECT source_id, unit_code, count(*) AS records, min(dossier_id, {EXAMPLES}) AS ex_ids, {counts}, {examples}
        FROM flagged GROUP BY source_id, unit_code ORDER BY source_id, unit_code
    """
    counts = con.sql(sql.replace("$after_end", f"TIMESTAMP '{after_end}'")).df()
    known = None if units_in_force is None else set(units_in_force)
    counts[UNIT_IN_FORCE] = True if known is None else counts["unit_code"].isin(known)
    return counts


# ---------------------------------------------------------------- the suite and its messages

def _count_message(check_id: str, row: pd.Series, column: str, examples: str) -> str:
    return (f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: "
            f"{int(row[column])} trên {int(row['records'])} hồ sơ; ví dụ: {examples}")


def _unit_message(check_id: str, row: pd.Series, column: str, examples: str) -> str:
    code = row["unit_code"] if isinstance(row["unit_code"], str) and row["unit_code"] else "(trống)"
    return (f"Nguồn {row['source_id']}: {int(row['records'])} hồ sơ ghi mã đơn vị {code}, không phải đơn vị nào "
            f"đang có hiệu lực trong kỳ (mã lạ, hoặc mã đơn vị riêng của phần mềm chưa chuyển được sang mã "
            f"đơn vị hành chính): các hồ sơ này không được tính cho đơn vị nào; ví dụ: {examples}")


# what the rule `finished_without_date` (tthc.rules) does with a finished dossier that has no finish date
_WITHOUT_DATE_FATE = {
    "returned_at": ("tính là kết thúc vào ngày trả kết quả", "không được tính vào cột nào của biểu vì cũng không có "
                    "ngày trả kết quả"),
    "pending": ("vẫn tính là đang giải quyết", None),
    "left_out": ("không được tính vào cột nào của biểu", None),
}


def _finished_status_message(check_id: str, row: pd.Series, column: str, examples: str,
                             finished_without_date: str = "returned_at") -> str:
    """Besides how many, what the figures did with them: a dossier finished without a date is
    judged by the rule set (docs/canonical-model.md), one with a date but no finished status stays pending."""
    without = int(row.get("n_finished_without_date", 0) or 0)
    without_any = int(row.get("n_finished_without_any_date", 0) or 0)
    with_date = int(row[column]) - without
    fate, fallback_fate = _WITHOUT_DATE_FATE.get(finished_without_date, _WITHOUT_DATE_FATE["returned_at"])
    parts = []
    if without:
        if fallback_fate and without_any:
            parts.append(f"{without} hồ sơ trạng thái đã xong nhưng không có ngày kết thúc: {without - without_any} "
                         f"{fate}, {without_any} {fallback_fate}")
        else:
            parts.append(f"{without} hồ sơ trạng thái đã xong nhưng không có ngày kết thúc: {fate}")
    if with_date:
        parts.append(f"{with_date} hồ sơ có ngày kết thúc mà trạng thái chưa xong: vẫn tính là đang giải quyết")
    return (f"Đơn vị {row['unit_code']}, nguồn {row['source_id']}: {title(check_id)}: {int(row[column])} trên "
            f"{int(row['records'])} hồ sơ ({'; '.join(parts)}); ví dụ: {examples}")


# check id → message builder (check id, count row, count column, example ids) → message; every
# record check says how many of the unit's records, and a few of their ids
RECORD_MESSAGES = {check_id: _count_message for check_id in RECORD_CHECKS} | {
    UNIT_CHECK: _unit_message, "records.finished_status": _finished_status_message}


def dossier_records_suite() -> gx.ExpectationSuite:
    """Per source and unit, how many records break each record-level rule (counted in SQL)."""
    suite = gx.ExpectationSuite(name="dossier_records")
    add = adder(suite)
    for check_id, (column, columns) in RECORD_CHECKS.items():
        add(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=0), check_id, columns)
    add(is_true(UNIT_IN_FORCE), UNIT_CHECK, ["unit_code"])
    return check_messages(suite, RECORD_MESSAGES)


def record_findings(counts: pd.DataFrame, failed: list[Failed], period: Period,
                    finished_without_date: str = "returned_at") -> list[Finding]:
    """`finished_without_date`: the published rule set's rule of that name, which the message of
    records.finished_status states."""
    findings = []
    for check_id, severity, columns, ids in failed:
        if check_id == UNIT_CHECK:
            findings += _unit_findings(counts.iloc[ids], severity, period)
            continue
        column = RECORD_CHECKS[check_id][0]
        for row_id in ids:
            row = counts.iloc[row_id]
            examples = ", ".join(list(row[f"ex_{column}"])[:5])
            message = _finished_status_message(check_id, row, column, examples, finished_without_date) \
                if check_id == "records.finished_status" else RECORD_MESSAGES[check_id](check_id, row, column, examples)
            findings.append(Finding(
                check_id, severity, message,
                period.start, period.end, source_id=row["source_id"], unit_code=row["unit_code"], basis="records",
                columns=columns, observed=str(int(row[column])), expected="0",
                location=f"dossiers.parquet, {row['source_id']}: {examples}"))
    return findings


def _unit_findings(rows: pd.DataFrame, severity: str, period: Period) -> list[Finding]:
    """One finding per source and unplaced unit code, with its dossier count (`observed`)."""
    findings = []
    for _, row in rows.iterrows():
        code = row["unit_code"] if isinstance(row["unit_code"], str) and row["unit_code"] else None
        examples = ", ".join(list(row["ex_ids"])[:EXAMPLES])
        findings.append(Finding(
            UNIT_CHECK, severity, _unit_message(UNIT_CHECK, row, "records", examples), period.start, period.end,
            source_id=row["source_id"], unit_code=code, basis="records", columns=["unit_code"],
            observed=str(int(row["records"])), expected="0",
            location=f"dossiers.parquet, {row['source_id']}: mã đơn vị {code or '(trống)'}; ví dụ: {examples}"))
    return findings


def validate_records(session: GxSession, dossiers: Path, period: Period, field_codes: list[str],
                     several_units: Path | None = None,
                     units_in_force: Iterable[str] | None = None,
                     finished_without_date: str = "returned_at") -> tuple[list[Finding], pd.DataFrame]:
    """The record checks of a quarter: the counts per source and unit (SQL), GX on them, the findings."""
    counts = record_counts(dossiers, period, field_codes, several_units, units_in_force)
    counts[ROW_ID] = range(len(counts))
    failed = session.validate(counts, dossier_records_suite())
    return record_findings(counts, failed, period, finished_without_date), counts
