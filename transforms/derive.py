"""Biểu 06 figures derived from dossier records, one SQL aggregation (docs/canonical-model.md)."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tthc import duck
from tthc.model import BIEU06_COLUMNS, BIEU06_SCHEMA, STATUSES_FINISHED, STATUSES_NOT_TAKEN_ON, \
    STATUSES_RESOLVED, STATUSES_RETURNED_WITHDRAWN
from tthc.periods import Period


def _codes(statuses: tuple[int, ...]) -> str:
    return ", ".join(str(int(s)) for s in statuses)


def derivation_sql(on_time_compare: str = "day") -> str:
    """SQL over a relation `dossiers` with parameters $start (first instant of the period) and
    $end (first instant after it); one row per source, unit and field."""
    if on_time_compare == "day":
        finished_vs_due = "date_diff('day', due_at::DATE, finished_at::DATE)"
        overdue_at_end = "due_at::DATE < $end::DATE"
    elif on_time_compare == "timestamp":
        finished_vs_due = "CASE WHEN finished_at < due_at THEN -1 WHEN finished_at = due_at THEN 0 ELSE 1 END"
        overdue_at_end = "due_at < $end"
    else:
        raise ValueError(f"on_time_compare {on_time_compare!r}: expected 'day' or 'timestamp'")
    resolved = f"finished_in_period AND status IN ({_codes(STATUSES_RESOLVED)})"
    finished_by = lambda t: f"(finished_at IS NOT NULL AND finished_at < {t} AND status IN ({_codes(STATUSES_FINISHED)}))"  # noqa: E731
    return f"""
    WITH handled AS (
        SELECT *,
               (received_at >= $start AND received_at < $end)
                   -- received "after" the period yet finished within it (a received date typed in the
                   -- future): it was received by the time it was finished, so within the period
                   OR (received_at >= $end AND {finished_by('$end')} AND finished_at >= $start) AS received_in_period,
               received_at < $start AND NOT {finished_by('$start')} AS carried,
               {finished_by('$end')} AND finished_at >= $start AS finished_in_period,
               received_at < $end AND NOT {finished_by('$end')} AS pending_at_end
        FROM dossiers
        WHERE status NOT IN ({_codes(STATUSES_NOT_TAKEN_ON)}) AND received_at IS NOT NULL
    ),
    counted AS (
        SELECT source_id, unit_code, coalesce(field_code, '') AS field_code,
            count(*) FILTER (WHERE received_in_period AND channel = 'online') AS received_online,
            count(*) FILTER (WHERE received_in_period AND channel IS DISTINCT FROM 'online') AS received_direct_postal,
            count(*) FILTER (WHERE carried) AS carried_over,
            count(*) FILTER (WHERE {resolved} AND {finished_vs_due} < 0) AS resolved_early,
            count(*) FILTER (WHERE {resolved} AND {finished_vs_due} = 0) AS resolved_on_time,
            count(*) FILTER (WHERE {resolved} AND ({finished_vs_due} > 0 OR due_at IS NULL)) AS resolved_late,
            count(*) FILTER (WHERE pending_at_end AND NOT coalesce({overdue_at_end}, false)) AS pending_within_due,
            count(*) FILTER (WHERE pending_at_end AND coalesce({overdue_at_end}, false)) AS pending_overdue,
            count(*) FILTER (WHERE finished_in_period AND status IN ({_codes(STATUSES_RETURNED_WITHDRAWN)})) AS returned_withdrawn
        FROM handled
        WHERE received_in_period OR carried OR finished_in_period OR pending_at_end
        GROUP BY ALL
    )
    SELECT unit_code, $period_start::DATE AS period_start, $period_end::DATE AS period_end, field_code,
           received_online + received_direct_postal + carried_over AS received_total,
           received_online, received_direct_postal, carried_over,
           resolved_early + resolved_on_time + resolved_late AS resolved_total,
           resolved_early, resolved_on_time, resolved_late,
           pending_within_due + pending_overdue AS pending_total, pending_within_due, pending_overdue,
           returned_withdrawn, 'records' AS basis, source_id, NULL::VARCHAR AS landed_file
    FROM counted
    ORDER BY source_id, unit_code, field_code
    """


def derive_figures(dossiers_path: Path, period: Period, out: Path, on_time_compare: str = "day") -> int:
    con = duck.connect()
    con.read_parquet(str(dossiers_path)).create_view("dossiers")
    params = {
        "start": f"{period.start} 00:00:00",
        "end": f"{period.end.fromordinal(period.end.toordinal() + 1)} 00:00:00",
        "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
    }
    sql = derivation_sql(on_time_compare).replace("$start", "$start::TIMESTAMP").replace("$end", "$end::TIMESTAMP")
    table = con.sql(sql, params=params).to_arrow_table()
    pq.write_table(table.cast(BIEU06_SCHEMA).select(BIEU06_COLUMNS), out)
    return table.num_rows
