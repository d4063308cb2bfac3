"""Biểu 06 figures derived from dossier records under a rule set (docs/canonical-model.md,
"Rule sets"): every dossier is placed in the form's columns by one SQL classification, whose
rules are query parameters, then counted."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq

from tthc import duck
from tthc.model import BIEU06_COLUMNS, BIEU06_SCHEMA
from tthc.periods import Period
from tthc.rules import PROVINCE, RuleSet

# a dossier's place in the form under a rule set: one row per dossier counted in the period
CLASSIFICATION_SQL = """
    WITH read AS (
        SELECT source_id, dossier_id, unit_code, coalesce(field_code, '') AS field_code, channel, status, paused_at,
               received_at, due_at, finished_at, returned_at,
               status IN (9, 10)
                   OR (status = 7 AND NOT $bug_cancelled_stay_pending)
                   OR (status = 8 AND $rule_stopped <> 'paused') AS finishing_status
        FROM dossiers
        WHERE status NOT IN (1, 3) AND received_at IS NOT NULL
    ),
    ended AS (
        SELECT *,
               CASE WHEN NOT finishing_status THEN NULL
                    WHEN finished_at IS NOT NULL THEN finished_at
                    WHEN $rule_finished_without_date = 'returned_at' THEN returned_at END AS ended_at,
               finishing_status AND finished_at IS NULL
                   AND ($rule_finished_without_date = 'left_out'
                        OR ($rule_finished_without_date = 'returned_at' AND returned_at IS NULL)) AS left_out
        FROM read
    ),
    placed AS (
        SELECT *,
               (received_at >= $start AND received_at < $end AND NOT ($bug_strict_bounds AND received_at = $start))
                   -- received "after" the period yet ended within it (a received date typed in the future):
                   -- it was received by the time it ended, so within the period
                   OR (received_at >= $end AND coalesce(ended_at >= $start AND ended_at < $end, false))
                   AS received_in_period,
               (received_at < $start OR ($bug_strict_bounds AND received_at = $start))
                   AND NOT coalesce(ended_at < $start, false) AS carried,
               coalesce($rule_carried_over_handed_back AND status IN (9, 10) AND received_at < $start
                        AND ended_at < $start AND returned_at >= $start AND returned_at < $end, false)
                   AS handed_back_in_period,
               coalesce(ended_at >= $start AND ended_at < $end
                        AND NOT ($bug_strict_bounds AND (ended_at = $start OR ended_at >= $end - INTERVAL 1 SECOND)),
                        false) AS ended_in_period,
               received_at < $end AND NOT coalesce(ended_at < $end, false) AS pending_at_end
        FROM ended
        WHERE NOT left_out
    ),
    paused AS (
        SELECT *,
               -- a dossier with an end date after the period's end was still being processed at it
               pending_at_end AND ended_at IS NULL AND list_contains($rule_paused_statuses, status)
                   AND (NOT list_contains($rule_paused_since, status) OR paused_at IS NULL OR paused_at < $end)
                   AS paused_at_end,
               CASE WHEN due_at IS NULL THEN NULL
                    WHEN $rule_on_time = 'day' THEN sign(date_diff('day', due_at::DATE, ended_at::DATE))
                    WHEN $rule_on_time = 'timestamp' THEN sign(epoch(ended_at) - epoch(due_at))
                    -- OpenCPS's BetimeUtils: early before the start of the due half-day session
                    WHEN ended_at < due_at::DATE + (CASE
                             WHEN hour(due_at) * 60 + minute(due_at) BETWEEN 420 AND 690 THEN INTERVAL 7 HOUR
                             WHEN hour(due_at) * 60 + minute(due_at) BETWEEN 810 AND 1020 THEN INTERVAL 13 HOUR
                             ELSE INTERVAL 0 HOUR END) + to_seconds(second(due_at)) THEN -1
                    WHEN ended_at <= due_at THEN 0
                    ELSE 1 END AS against_due
        FROM placed
        WHERE received_in_period OR carried OR handed_back_in_period OR ended_in_period OR pending_at_end
    )
    SELECT source_id, dossier_id, unit_code, field_code,
           CASE WHEN received_in_period AND channel = 'online' THEN 'online'
                WHEN received_in_period THEN 'direct_postal'
                WHEN carried OR handed_back_in_period THEN 'carried_over' END AS received_as,
           CASE WHEN NOT ended_in_period THEN NULL
                WHEN status = 7 THEN CASE WHEN $rule_withdrawn = 'resolved_on_time' THEN 'on_time' END
                WHEN status = 8 AND $rule_stopped <> 'resolved' THEN NULL
                WHEN due_at IS NULL THEN $rule_no_due_date
                WHEN against_due < 0 THEN 'early'
                WHEN against_due = 0 THEN 'on_time'
                ELSE 'late' END AS resolved_as,
           CASE WHEN NOT pending_at_end THEN NULL
                WHEN paused_at_end AND $rule_paused = 'not_pending' THEN NULL
                WHEN paused_at_end AND $rule_paused = 'within_due' THEN 'within_due'
                WHEN due_at IS NULL THEN 'within_due'
                WHEN due_at < $end - CASE WHEN $rule_due_on_last_day = 'overdue' THEN INTERVAL 0 DAY
                                          ELSE INTERVAL 1 DAY END THEN 'overdue'
                ELSE 'within_due' END AS pending_as,
           coalesce(ended_in_period AND ((status = 7 AND $rule_withdrawn = 'returned_withdrawn')
                                         OR (status = 8 AND $rule_stopped = 'returned_withdrawn')), false)
               AS returned_withdrawn,
           coalesce(paused_at_end, false) AS paused
    FROM paused
"""

# how each figure's dossiers are picked out of a classification; pending_paused, beside the form
# ("chờ bổ sung"), counts paused dossiers pending at the end whatever the rule set does with them
MEMBERSHIP = {
    "received_total": "received_as IS NOT NULL",
    "received_online": "received_as = 'online'",
    "received_direct_postal": "received_as = 'direct_postal'",
    "carried_over": "received_as = 'carried_over'",
    "resolved_total": "resolved_as IS NOT NULL",
    "resolved_early": "resolved_as = 'early'",
    "resolved_on_time": "resolved_as = 'on_time'",
    "resolved_late": "resolved_as = 'late'",
    "pending_total": "pending_as IS NOT NULL",
    "pending_within_due": "pending_as = 'within_due'",
    "pending_overdue": "pending_as = 'overdue'",
    "returned_withdrawn": "returned_withdrawn",
    "pending_paused": "paused",
}

DERIVATION_SQL = f"""
    WITH classified AS ({CLASSIFICATION_SQL}),
    counted AS (
        SELECT source_id, unit_code, field_code,
               {', '.join(f'count(*) FILTER (WHERE {test}) AS {name}' for name, test in MEMBERSHIP.items())}
        FROM classified
        GROUP BY ALL
    )
    SELECT unit_code, $period_start::DATE AS period_start, $period_end::DATE AS period_end, field_code,
           received_total, received_online, received_direct_postal, carried_over,
           resolved_total, resolved_early, resolved_on_time, resolved_late,
           pending_total, pending_within_due, pending_overdue,
           returned_withdrawn, pending_paused, 'records' AS basis, source_id, NULL::VARCHAR AS landed_file
    FROM counted
    ORDER BY source_id, unit_code, field_code
"""


def derivation_sql() -> str:
    """SQL over a relation `dossiers` with the parameters of `derivation_params`; one row per
    source, unit and field."""
    return _timestamps(DERIVATION_SQL)


def classification_sql() -> str:
    """SQL over a relation `dossiers` with the parameters of `derivation_params`: one row per
    dossier counted in the period, with its place in the form."""
    return _timestamps(CLASSIFICATION_SQL)


def derivation_params(period: Period, rules: RuleSet = PROVINCE) -> dict:
    """$start is the first instant of the period, $end the first instant after it (local time)."""
    return {
        "start": period.start, "end": period.end + timedelta(days=1),
        "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
        **rules.parameters(),
    }


def classification_params(period: Period, rules: RuleSet = PROVINCE) -> dict:
    """The parameters of `classification_sql`."""
    return {"start": period.start, "end": period.end + timedelta(days=1), **rules.parameters()}


def _timestamps(sql: str) -> str:
    return sql.replace("$start", "$start::TIMESTAMP").replace("$end", "$end::TIMESTAMP")


def derive_figures(dossiers_path: Path, period: Period, out: Path, rules: RuleSet = PROVINCE) -> int:
    con = duck.connect()
    con.read_parquet(str(dossiers_path)).create_view("dossiers")
    table = con.sql(derivation_sql(), params=derivation_params(period, rules)).to_arrow_table()
    pq.write_table(table.cast(BIEU06_SCHEMA).select(BIEU06_COLUMNS), out)
    return table.num_rows
