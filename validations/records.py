"""Record-level checks as SQL in DuckDB over the canonical dossiers Parquet.

Records are never pulled into one pandas frame: DuckDB counts, per source and unit, the
records that break each rule (with a few example dossier ids), and only those counts go to
GX (validations/suites.py) and into findings.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd

from tthc import duck
from tthc.model import STATUSES_FINISHED, STATUS_REFUSED
from tthc.periods import Period

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


def record_counts(dossiers: Path, period: Period, field_codes: list[str],
                  several_units: Path | None = None) -> pd.DataFrame:
    """One row per source and unit: how many records break each rule, and example dossier ids.

    `several_units` is a Parquet file of the (source_id, dossier_id) that a source lists under
    more than one unit, found by canonicalize before de-duplication (which keeps one record per
    source and id, so the dossiers cannot show it)."""
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
    sql = f"""
        WITH across AS ({across}),
        flagged AS (
            SELECT d.*, coalesce(a.across, 1) AS across, CASE WHEN w.dossier_id IS NULL THEN 1 ELSE 2 END AS within_source
            FROM dossiers d
            LEFT JOIN across a USING (dossier_id)
            LEFT JOIN several_units w ON w.source_id = d.source_id AND w.dossier_id = d.dossier_id
        )
        SELECT source_id, unit_code, count(*) AS records, {counts}, {examples}
        FROM flagged GROUP BY source_id, unit_code ORDER BY source_id, unit_code
    """
    return con.sql(sql.replace("$after_end", f"TIMESTAMP '{after_end}'")).df()
