"""Publishing in the warehouse: the Biểu 06 figures of a period become a numbered vintage
(`publish` views), and the tables its files are made from are read back from here.

A vintage is created only when the unit-level figures differ from the newest one, so rerunning
an unchanged quarter publishes nothing new. The files themselves are written by publishing/
(runner/publication.py joins the two under the period's warehouse lock).
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Callable

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tthc.form import BESIDE_FORM_FIGURES, FACT_FIGURES, FIGURES, PUBLISHED_STATUSES, add_up, quarter_label
from tthc.model import INDICATOR_COLUMNS
from tthc.periods import Period
from warehouse.db import bulk_insert

# the published statuses as an SQL list: constants of the form, not data
PUBLISHED_IN = ", ".join(f"'{status}'" for status in PUBLISHED_STATUSES)

UNIT_COLUMNS = ["unit_code", "unit_name", "unit_level", "period_start", "period_end", "vintage", "quality_status",
                "source_id", "basis", *FACT_FIGURES]
ROLLUP_COLUMNS = ["parent_code", "parent_level", "period_start", "period_end", "vintage", "field_code", *FACT_FIGURES,
                  "units_included", "units_not_published", "duplicates_removed"]


def _dates(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("period_start", "period_end"):
        if column in frame:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return frame


def _figures(frame: pd.DataFrame) -> pd.DataFrame:
    for f in FACT_FIGURES:
        if f in frame:
            frame[f] = frame[f].astype("Int64")
    return frame


def unit_figures(conn: sa.Connection, period: Period) -> pd.DataFrame:
    """Reconciled figures summed over fields, for units whose figures may be published; a unit
    whose complete source had no dossier gets zeros, not a gap."""
    sums = ", ".join(f"coalesce(sum(r.{f}), CASE WHEN s.coverage_complete THEN 0 END) AS {f}" for f in FIGURES)
    # beside the form: only records give them, never a zero for a unit that reports by workbook
    beside = ", ".join(f"CASE WHEN s.basis = 'records' THEN coalesce(sum(r.{f}), CASE WHEN s.coverage_complete "
                       f"THEN 0 END) END AS {f}" for f in BESIDE_FORM_FIGURES)
    sql = f"""
        SELECT s.unit_code, s.unit_name, s.unit_level, s.period_start, s.period_end, s.quality_status,
               s.source_id, s.basis, {sums}, {beside}
        FROM core.unit_period_status s
        LEFT JOIN core.bieu06_reconciled r
          ON r.unit_code = s.unit_code AND r.period_start = s.period_start AND r.period_end = s.period_end
         AND r.source_id = s.source_id
        WHERE s.period_start = :start AND s.period_end = :end AND s.quality_status IN ({PUBLISHED_IN})
        GROUP BY s.unit_code, s.unit_name, s.unit_level, s.period_start, s.period_end, s.quality_status,
                 s.source_id, s.basis, s.coverage_complete
        ORDER BY s.unit_code
    """
    return _figures(_dates(pd.read_sql(sa.text(sql), conn, params={"start": period.start, "end": period.end})))


# a new vintage's figures by unit × field (publish.bieu06_by_unit_field), from the reconciled rows
# of the units it publishes
FREEZE_UNIT_FIELDS = f"""
    INSERT INTO core.published_bieu06_by_unit_field (unit_code, period_start, period_end, vintage, field_code,
                                                     {', '.join(FACT_FIGURES)})
    SELECT r.unit_code, r.period_start, r.period_end, :v, r.field_code, {', '.join(f'r.{f}' for f in FACT_FIGURES)}
    FROM core.bieu06_reconciled r
    JOIN core.unit_period_status s
      ON s.unit_code = r.unit_code AND s.source_id = r.source_id
     AND s.period_start = r.period_start AND s.period_end = r.period_end
    WHERE r.period_start = :start AND r.period_end = :end AND s.quality_status IN ({PUBLISHED_IN})
"""


def content_hash(frame: pd.DataFrame) -> str:
    columns = [c for c in UNIT_COLUMNS if c != "vintage"]
    text = frame[columns].sort_values("unit_code").to_csv(index=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sources_with_changed_figures(frame: pd.DataFrame, previous: pd.DataFrame,
                                 columns: list[str] | None = None) -> list[str]:
    """The sources whose published units differ between two vintages' unit rows in `columns`
    (default: the unit and its figures): a unit added, withdrawn, or with another figure. A unit
    that moved from one source to another names both."""
    columns = columns or ["unit_code", "period_start", "period_end", "source_id", "basis", *FACT_FIGURES]

    def rows(table: pd.DataFrame) -> dict[str, set[tuple]]:
        text = _figures(_dates(table[columns].copy())).astype(str)
        grouped: dict[str, set[tuple]] = {}
        for row in text.itertuples(index=False):
            grouped.setdefault(row.source_id, set()).add(tuple(row))
        return grouped

    now, then = rows(frame), rows(previous)
    return sorted(s for s in now.keys() | then.keys() if now.get(s, set()) != then.get(s, set()))


WITHDRAWN_SHOWN = 10
# what a unit's row says besides its figures: a change here alone is no change of figures
STATUS_COLUMNS = ["unit_code", "source_id", "quality_status", "unit_name", "unit_level"]


def vintage_reason(frame: pd.DataFrame, previous: pd.DataFrame | None, note: str | None) -> str:
    """Why the figures changed: the operator's note, and the sources whose published unit figures
    (or statuses) changed since the previous vintage; never a source whose figures are the same,
    such as one kept on its last good landing or re-extracted to the same figures."""
    if previous is None:
        automatic = "first publication of the period"
    else:
        changed = sources_with_changed_figures(frame, previous)
        flagged = [s for s in sources_with_changed_figures(frame, previous, STATUS_COLUMNS) if s not in changed]
        said = ([f"figures changed: {', '.join(changed)}"] if changed else []) + \
            ([f"quality flags changed, figures the same: {', '.join(flagged)}"] if flagged else [])
        automatic = "; ".join(said) or "same unit figures per source; rules, configuration or reference data changed"
        # a unit the previous vintage published and this one does not makes the publication less
        # complete: said by name, never only as a source that "changed"
        gone = sorted(set(previous["unit_code"]) - set(frame["unit_code"]))
        if gone:
            shown = ", ".join(gone[:WITHDRAWN_SHOWN]) + (f" and {len(gone) - WITHDRAWN_SHOWN} more"
                                                         if len(gone) > WITHDRAWN_SHOWN else "")
            automatic += f"; {len(gone)} units published before are withheld now (quality.findings): {shown}"
    return f"{note.strip()} ({automatic})" if note and note.strip() else automatic


def published_units(conn: sa.Connection, period: Period, vintage: int) -> pd.DataFrame:
    """The unit rows of one published vintage, as `unit_figures` gives them."""
    frame = pd.read_sql(sa.text(
        f"SELECT {', '.join(UNIT_COLUMNS)} FROM core.published_bieu06_by_unit "
        "WHERE period_start = :start AND period_end = :end AND vintage = :v ORDER BY unit_code"),
        conn, params={"start": period.start, "end": period.end, "v": vintage})
    return _figures(_dates(frame))


def _period_params(period: Period) -> dict:
    return {"start": period.start, "end": period.end, "first": datetime.combine(period.start, datetime.min.time()),
            "after": datetime.combine(period.end + timedelta(days=1), datetime.min.time())}


# core.fact_dossier holds one row per period, source and dossier (its key: canonicalize keeps
# the latest update of each), so counting rows counts each dossier once, per unit and, summed
# over the units, for the whole: one plain aggregation, no DISTINCT and no grouping by dossier.
RECORD_COUNTS_SQL = f"""
    SELECT d.unit_code,
           count(*) FILTER (WHERE {{received}} AND d.fee_amount > 0) AS fee_dossiers,
           count(*) FILTER (WHERE {{received}} AND d.fee_amount > 0 AND d.paid_online) AS paid_online,
           count(*) FILTER (WHERE {{resolved}}) AS resolved_records,
           count(*) FILTER (WHERE {{resolved}} AND d.results_digitised) AS results_digitised
    FROM core.fact_dossier d
    JOIN core.unit_period_status s
      ON s.unit_code = d.unit_code AND s.source_id = d.source_id
     AND s.period_start = d.period_start AND s.period_end = d.period_end
    WHERE d.period_start = :start AND d.period_end = :end AND s.basis = 'records'
      AND s.quality_status IN ({PUBLISHED_IN}) AND d.source_id IS NOT NULL AND d.dossier_id IS NOT NULL
    GROUP BY d.unit_code
    ORDER BY d.unit_code
"""
RECEIVED = "d.received_at >= :first AND d.received_at < :after AND d.status NOT IN (1, 3)"
RESOLVED = "d.finished_at >= :first AND d.finished_at < :after AND d.status IN (9, 10)"
COUNT_COLUMNS = ["fee_dossiers", "paid_online", "resolved_records", "results_digitised"]
# (published unit figures, record counts per unit, province figures, province record counts) → indicator rows
Indicators = Callable[[pd.DataFrame, pd.DataFrame, dict, dict], pd.DataFrame]


def record_counts(conn: sa.Connection, period: Period) -> tuple[pd.DataFrame, dict]:
    """The Decision 766 record counts of each published records-based unit, and of the whole:
    a dossier is one row of one unit, so the whole is the units' sum."""
    frame = pd.read_sql(sa.text(RECORD_COUNTS_SQL.format(received=RECEIVED, resolved=RESOLVED)), conn,
                        params=_period_params(period))
    units = frame[["unit_code", *COUNT_COLUMNS]].reset_index(drop=True)
    for name in COUNT_COLUMNS:
        units[name] = units[name].astype("int64")
    return units, {name: int(units[name].sum()) for name in COUNT_COLUMNS}


def _freeze_rollup_and_indicators(conn: sa.Connection, period: Period, vintage: int, units: pd.DataFrame,
                                  province_code: str, indicators: Indicators) -> None:
    params = _period_params(period)
    rollup = pd.read_sql(sa.text(
        "SELECT * FROM core.bieu06_rollup WHERE period_start = :start AND period_end = :end"), conn, params=params)
    rollup = _figures(_dates(rollup)).assign(vintage=vintage)
    bulk_insert(conn, "core.published_rollup", pa.Table.from_pandas(rollup[ROLLUP_COLUMNS], preserve_index=False))
    province_rows = rollup[rollup["parent_level"] == "province"]
    province = {"province_code": province_code, **{f: add_up(f, province_rows[f]) for f in FACT_FIGURES}}
    unit_counts, province_counts = record_counts(conn, period)
    table = indicators(units, unit_counts, province, province_counts)
    table = table.assign(period_start=period.start, period_end=period.end, vintage=vintage)
    bulk_insert(conn, "core.published_indicators", pa.Table.from_pandas(table, preserve_index=False))


def commit_vintage(engine: sa.Engine, period: Period, run_id: str, *, indicators: Indicators,
                   province_code: str = "", sources: dict[str, str] | None = None, note: str | None = None,
                   before_commit: Callable[[sa.Connection, dict], None] | None = None) -> dict:
    """A new vintage of the period when its unit figures differ from the newest one, in one
    transaction; the caller holds the period's warehouse lock. When no unit may be published
    (every unit missing or withheld) nothing is written and `vintage` is None. `sources`: a
    checksum of each source's landed data, kept with the vintage (lineage); the reason names
    the sources whose published unit figures changed since the previous vintage; `note`: the
    operator's reason; `indicators` computes the Decision 766 rows; `before_commit(conn, result)`
    runs inside the transaction once the vintage is known (the files are staged there): if it
    fails, nothing is committed."""
    sources = sources or {}
    reason = None
    with engine.begin() as conn:
        frame = unit_figures(conn, period)
        if frame.empty:  # no unit may be published: never a vintage of nothing (or of zeros); the newest stays
            return {"vintage": None, "new_vintage": False, "units": 0, "content_sha256": None,
                    "reason": "nothing to publish: no unit of the period has figures that may be published"}
        digest = content_hash(frame)
        # .all(), not .first(): DuckDB needs every result fetched before the bulk insert
        vintages = conn.execute(sa.text(
            "SELECT vintage, content_sha256, sources FROM publish.vintages WHERE period_start = :s AND period_end = :e "
            "ORDER BY vintage DESC"), {"s": period.start, "e": period.end}).all()
        latest = vintages[0] if vintages else None
        if latest is not None and latest.content_sha256 == digest:
            vintage, created = latest.vintage, False
        else:
            vintage, created = (latest.vintage + 1 if latest else 1), True
            previous = published_units(conn, period, latest.vintage) if latest is not None else None
            reason = vintage_reason(frame, previous, note)
            frame["vintage"] = vintage
            table = pa.Table.from_pandas(frame[UNIT_COLUMNS], preserve_index=False)
            table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
            bulk_insert(conn, "core.published_bieu06_by_unit", table)
            conn.execute(sa.text(FREEZE_UNIT_FIELDS), {"start": period.start, "end": period.end, "v": vintage}).close()
            _freeze_rollup_and_indicators(conn, period, vintage, frame, province_code, indicators)
            conn.execute(sa.text(
                "INSERT INTO publish.vintages (period_start, period_end, vintage, content_sha256, published_at, run_id,"
                " units, reason, sources) VALUES (:s, :e, :v, :h, :at, :run, :n, :reason, :sources)"),
                {"s": period.start, "e": period.end, "v": vintage, "h": digest,
                 "at": datetime.now(timezone.utc).replace(tzinfo=None), "run": run_id, "n": len(frame),
                 "reason": reason, "sources": json.dumps(sources, sort_keys=True)}).close()
        result = {"vintage": vintage, "new_vintage": created, "units": len(frame), "content_sha256": digest,
                  "reason": reason}
        if before_commit is not None:
            before_commit(conn, result)
    return {"vintage": vintage, "new_vintage": created, "units": len(frame), "content_sha256": digest,
            "reason": reason}


def vintage_tables(conn: sa.Connection, period: Period, vintage: int, field_names: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Every publish view's rows for one vintage of a period, as the files carry them."""
    params = {"start": period.start, "end": period.end, "v": vintage}
    where = "period_start = :start AND period_end = :end AND vintage = :v"
    by_unit = pd.read_sql(sa.text(
        f"SELECT {', '.join(UNIT_COLUMNS)} FROM core.published_bieu06_by_unit WHERE {where} ORDER BY unit_code"),
        conn, params=params)
    rollup = pd.read_sql(sa.text(
        f"SELECT * FROM core.published_rollup WHERE {where} AND parent_level = 'province' ORDER BY field_code"),
        conn, params=params)
    sums = rollup.groupby(["parent_code", "period_start", "period_end", "vintage"], as_index=False).agg(
        **{f: (f, "sum") for f in FIGURES}, **{f: (f, partial(add_up, f)) for f in BESIDE_FORM_FIGURES},
        units_included=("units_included", "max"),
        units_not_published=("units_not_published", "max"), duplicates_removed=("duplicates_removed", "max"))
    by_province = sums.rename(columns={"parent_code": "province_code"})
    by_field = rollup[["field_code", "period_start", "period_end", "vintage", *FACT_FIGURES]].copy()
    by_field.insert(1, "field_name", by_field["field_code"].map(field_names))
    indicators_766 = pd.read_sql(sa.text(
        f"SELECT unit_code, unit_level, period_start, period_end, vintage, "
        f"{', '.join(c for c in INDICATOR_COLUMNS if c not in ('unit_code', 'unit_level'))} "
        f"FROM core.published_indicators WHERE {where} ORDER BY unit_level, unit_code, indicator"),
        conn, params=params)
    units = by_unit[["unit_code", "unit_name", "unit_level"]].copy()
    for code in sorted(set(indicators_766["unit_code"]) - set(units["unit_code"])):
        units.loc[len(units)] = [code, None, "province"]
    tables = {"units": units, "bieu06_by_unit": by_unit, "bieu06_by_province": by_province,
              "bieu06_by_field": by_field, "indicators_766": indicators_766}
    return {name: _figures(_dates(frame)) for name, frame in tables.items()}


def form_rows(conn: sa.Connection, period: Period, field_names: dict[str, str]) -> pd.DataFrame:
    """Published figures by level and field: the rows of the province's Biểu 06 workbook."""
    sums = ", ".join([*(f"sum(r.{f}) AS {f}" for f in FIGURES),
                      *(f"CASE WHEN count(r.{f}) = count(*) THEN sum(r.{f}) END AS {f}" for f in BESIDE_FORM_FIGURES)])
    frame = pd.read_sql(sa.text(f"""
        SELECT s.unit_level, r.field_code, {sums}
        FROM core.bieu06_reconciled r
        JOIN core.unit_period_status s
          ON s.unit_code = r.unit_code AND s.source_id = r.source_id
         AND s.period_start = r.period_start AND s.period_end = r.period_end
        WHERE r.period_start = :start AND r.period_end = :end AND s.quality_status IN ({PUBLISHED_IN})
        GROUP BY s.unit_level, r.field_code ORDER BY s.unit_level, r.field_code"""),
        conn, params={"start": period.start, "end": period.end})
    frame.insert(2, "field_name", frame["field_code"].map(field_names).fillna(frame["field_code"]))
    return _figures(frame)


def report_inputs(conn: sa.Connection, period: Period) -> dict:
    """What the analysts' report shows beside the vintage's tables: the trend over every quarter
    published, the findings by severity and the call-back list."""
    trend = pd.read_sql(sa.text(
        "SELECT period_start, period_end, received_total, carried_over, resolved_total, pending_total, "
        "resolved_early + resolved_on_time AS in_time FROM publish.bieu06_by_province_v1 ORDER BY period_end"), conn)
    trend["period_label"] = [quarter_label(d) for d in pd.to_datetime(trend["period_end"])]
    trend["resolved_in_time_share"] = [None if not r else i / r for i, r in zip(trend["in_time"], trend["resolved_total"])]
    params = {"start": period.start, "end": period.end}
    severities = conn.execute(sa.text(
        "SELECT severity, count(*) FROM quality.findings WHERE period_start = :start AND period_end = :end "
        "GROUP BY severity"), params).all()
    callback = pd.read_sql(sa.text("""
        SELECT f.unit_code, s.unit_name, f.check_id, f.severity, f.message, f.columns
        FROM quality.findings f
        LEFT JOIN core.unit_period_status s ON s.unit_code = f.unit_code
             AND s.period_start = f.period_start AND s.period_end = f.period_end
        WHERE f.period_start = :start AND f.period_end = :end AND f.unit_code IS NOT NULL
          AND f.severity IN ('critical', 'warning')
        ORDER BY CASE f.severity WHEN 'critical' THEN 0 ELSE 1 END, f.unit_code, f.check_id"""), conn, params=params)
    callback["columns"] = [", ".join(json.loads(c)) if c else "" for c in callback["columns"]]
    moves = pd.read_sql(sa.text("""
        SELECT m.against, m.unit_code, s.unit_name, m.figure, m.province_value, m.against_value, m.rule,
               m.rule_label, m.dossiers_in, m.dossiers_out, m.example_dossiers
        FROM quality.definition_moves m
        LEFT JOIN core.unit_period_status s ON s.unit_code = m.unit_code
             AND s.period_start = m.period_start AND s.period_end = m.period_end
        WHERE m.period_start = :start AND m.period_end = :end
        ORDER BY m.against, m.unit_code"""), conn, params=params)
    return {"trend": trend[["period_label", "received_total", "carried_over", "resolved_total", "pending_total",
                            "resolved_in_time_share"]],
            "findings_by_severity": {severity: count for severity, count in severities}, "callback_list": callback,
            "definition_moves": moves}
