"""Earlier periods' figures from the warehouse, read-only: the previous period for continuity,
the last quarters of each unit for plausibility. An empty or absent warehouse gives empty
frames, and the checks that need them are reported as unchecked."""
from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from tthc.connections import redact_url
from tthc.form import FIGURES

log = logging.getLogger(__name__)
COLUMNS = ["unit_code", "period_start", "period_end", "field_code", "source_id", "basis", *FIGURES]


def earlier_figures(warehouse_url: str, before: date, since: date) -> pd.DataFrame:
    """Every source's Biểu 06 rows (core.fact_bieu06) of the periods that end in [since, before)."""
    empty = pd.DataFrame(columns=COLUMNS)
    if warehouse_url.startswith("duckdb:///"):
        path = warehouse_url.removeprefix("duckdb:///")
        if path in ("", ":memory:") or not Path(path).exists():
            return empty
    from warehouse.db import engine_for

    try:
        with engine_for(warehouse_url) as engine, engine.connect() as conn:
            present = conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'core' AND table_name = 'fact_bieu06'"
            )).scalar()
            if not present:
                return empty
            frame = pd.read_sql_query(sa.text(
                f"SELECT {', '.join(COLUMNS)} FROM core.fact_bieu06 WHERE period_end < :before AND period_end >= :since"),
                conn, params={"before": before, "since": since})
    except sa.exc.SQLAlchemyError as exc:
        log.warning("warehouse %s not readable for history: %s", redact_url(warehouse_url), exc)
        return empty
    frame["period_start"] = pd.to_datetime(frame["period_start"]).dt.date
    frame["period_end"] = pd.to_datetime(frame["period_end"]).dt.date
    return frame
