"""Period loads: one transaction replaces every row of the period, so a rerun leaves exactly
the same rows and a load killed half-way leaves the previous state."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tthc.periods import Period
from warehouse.db import bulk_insert

PERIOD_TABLES = ("core.fact_dossier", "core.fact_bieu06", "core.unit_period_status", "core.bieu06_reconciled",
                 "quality.findings", "quality.quarantine")


def _with(table: pa.Table, **constants) -> pa.Table:
    for name, value in constants.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    return table


def replace_units(conn: sa.Connection, units: pd.DataFrame) -> None:
    conn.exec_driver_sql("DELETE FROM core.dim_unit").close()
    bulk_insert(conn, "core.dim_unit", pa.Table.from_pandas(units, preserve_index=False))


def load_period(engine: sa.Engine, period: Period, run_id: str, *, units: pd.DataFrame, dossiers: pa.Table,
                bieu06_rows: pa.Table, unit_status: pd.DataFrame, reconciled: pd.DataFrame,
                findings: pa.Table, quarantine: pd.DataFrame) -> dict[str, int]:
    counts: dict[str, int] = {}
    frames = {
        "core.fact_dossier": dossiers,
        "core.fact_bieu06": bieu06_rows,
        "core.unit_period_status": pa.Table.from_pandas(unit_status, preserve_index=False),
        "core.bieu06_reconciled": pa.Table.from_pandas(reconciled.drop(columns=["unit_name", "unit_level"]),
                                                       preserve_index=False),
        "quality.findings": findings,
        "quality.quarantine": pa.Table.from_pandas(quarantine, preserve_index=False),
    }
    with engine.begin() as conn:
        replace_units(conn, units)
        for table in PERIOD_TABLES:
            conn.execute(sa.text(f"DELETE FROM {table} WHERE period_start = :start AND period_end = :end"),
                         {"start": period.start, "end": period.end}).close()
            data = frames[table]
            data = _with(data, run_id=run_id)
            if "period_start" not in data.column_names:
                data = data.append_column("period_start", pa.array([period.start] * data.num_rows, pa.date32()))
                data = data.append_column("period_end", pa.array([period.end] * data.num_rows, pa.date32()))
            counts[table] = bulk_insert(conn, table, data)
        conn.execute(sa.text(
            "INSERT INTO core.runs (run_id, period_start, period_end, stage, finished_at, detail) "
            "VALUES (:run_id, :start, :end, 'load', :at, :detail)"),
            {"run_id": run_id, "start": period.start, "end": period.end,
             "at": datetime.now(timezone.utc).replace(tzinfo=None), "detail": json.dumps(counts)})
    return counts
