"""Earlier figures from the warehouse, read-only: the previous period for continuity, the last
quarters of each unit for plausibility, and the newest published vintage of the period being
run (what an outlier is measured against besides history and peers). An empty or absent
warehouse gives empty frames, and the checks that need them are reported as unchecked or use
the references they have."""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tthc.connections import redact_url
from tthc.form import FIGURES
from tthc.periods import Period

log = logging.getLogger(__name__)
COLUMNS = ["unit_code", "period_start", "period_end", "field_code", "source_id", "basis", *FIGURES]
PUBLISHED_COLUMNS = ["unit_code", "vintage", "source_id", *FIGURES]


def _read(warehouse_url: str, table: str, sql: str, params: dict, columns: list[str]) -> pd.DataFrame:
    """The rows `sql` reads, or an empty frame when the warehouse or its `table` (core.<table>)
    is not there yet or cannot be read."""
    empty = pd.DataFrame(columns=columns)
    if warehouse_url.startswith("duckdb:///"):
        path = warehouse_url.removeprefix("duckdb:///")
        if path in ("", ":memory:") or not Path(path).exists():
            return empty
    from warehouse.db import engine_for

    try:
        with engine_for(warehouse_url) as engine, engine.connect() as conn:
            present = conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'core' AND table_name = :t"),
                {"t": table}).scalar()
            if not present:
                return empty
            return pd.read_sql_query(sa.text(sql), conn, params=params)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("warehouse %s not readable for history: %s", redact_url(warehouse_url), exc)
        return empty


def earlier_figures(warehouse_url: str, before: date, since: date) -> pd.DataFrame:
    """Every source's Biểu 06 rows (core.fact_bieu06) of the periods that end in [since, before)."""
    frame = _read(warehouse_url, "fact_bieu06",
                  f"SELECT {', '.join(COLUMNS)} FROM core.fact_bieu06 WHERE period_end < :before AND period_end >= :since",
                  {"before": before, "since": since}, COLUMNS)
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    frame["period_end"] = pd.to_datetime(frame["period_end"]).dt.date
    return frame


RECONCILED_COLUMNS = ["unit_code", "field_code", "quality_status", *FIGURES]


def reconciled_figures(warehouse_url: str, period: Period) -> pd.DataFrame:
    """The period's reconciled figures (core.bieu06_reconciled: one row per unit and field, with the
    unit's quality status); empty before the period was loaded."""
    return _read(warehouse_url, "bieu06_reconciled",
                 f"SELECT {', '.join(RECONCILED_COLUMNS)} FROM core.bieu06_reconciled "
                 "WHERE period_start = :start AND period_end = :end",
                 {"start": period.start, "end": period.end}, RECONCILED_COLUMNS)


def published_units(warehouse_url: str, period: Period) -> set[str]:
    """The units of the period whose figures may be published (core.unit_period_status ok or warning)."""
    frame = _read(warehouse_url, "unit_period_status",
                  "SELECT unit_code FROM core.unit_period_status WHERE period_start = :start AND period_end = :end "
                  "AND quality_status IN ('ok', 'warning')", {"start": period.start, "end": period.end}, ["unit_code"])
    return set(frame["unit_code"])


def published_figures(warehouse_url: str, period: Period) -> pd.DataFrame:
    """The unit figures of the period's newest vintage (core.published_bieu06_by_unit, summed over
    fields as published); empty before the period's first publication."""
    return _read(warehouse_url, "published_bieu06_by_unit",
                 f"SELECT {', '.join(PUBLISHED_COLUMNS)} FROM core.published_bieu06_by_unit "
                 "WHERE period_start = :start AND period_end = :end AND vintage = "
                 "(SELECT max(vintage) FROM core.published_bieu06_by_unit WHERE period_start = :start "
                 "AND period_end = :end)",
                 {"start": period.start, "end": period.end}, PUBLISHED_COLUMNS)
