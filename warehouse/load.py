"""Period loads: the run's rows are written to `staging`, then swapped into `core` and
`quality` in one transaction. A load killed while staging leaves core untouched; one killed
during the swap is rolled back; a rerun leaves exactly the same rows."""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from tthc.periods import Period
from warehouse.comments import columns
from warehouse.db import (Constant, ParquetRows, WarehouseLoadError, bulk_insert, connection_lost, lacks_privilege,
                          warehouse_lock)

# target table → its staging twin
PERIOD_TABLES = {
    "core.fact_dossier": "staging.fact_dossier",
    "core.fact_bieu06": "staging.fact_bieu06",
    "core.unit_period_status": "staging.unit_period_status",
    "core.bieu06_reconciled": "staging.bieu06_reconciled",
    "core.bieu06_rollup": "staging.bieu06_rollup",
    "quality.findings": "staging.findings",
    "quality.quarantine": "staging.quarantine",
    "quality.definition_moves": "staging.definition_moves",
    "quality.callback": "staging.callback",
}


def _arrow(data) -> pa.Table | ParquetRows:
    return data if isinstance(data, (pa.Table, ParquetRows)) else pa.Table.from_pandas(data, preserve_index=False)


def _with_run_and_period(table: pa.Table, run_id: str, period: Period) -> pa.Table:
    if "run_id" in table.column_names:
        table = table.drop_columns(["run_id"])
    table = table.append_column("run_id", pa.array([run_id] * table.num_rows, pa.string()))
    if "period_start" not in table.column_names:
        table = table.append_column("period_start", pa.array([period.start] * table.num_rows, pa.date32()))
        table = table.append_column("period_end", pa.array([period.end] * table.num_rows, pa.date32()))
    return table


def _rows_with_run_and_period(rows: ParquetRows, run_id: str, period: Period) -> ParquetRows:
    extra = {"run_id": Constant(run_id, pa.string())}
    if "period_start" not in rows.column_names:
        extra.update(period_start=Constant(period.start, pa.date32()), period_end=Constant(period.end, pa.date32()))
    return rows.with_columns(**extra)


def _replace_reference(conn: sa.Connection, table: str, data: pd.DataFrame) -> None:
    conn.exec_driver_sql(f"DELETE FROM {table}").close()
    bulk_insert(conn, table, _arrow(data))


def _columns(conn: sa.Connection, qualified: str) -> str:
    """The table's columns in order, quoted, for INSERT … SELECT."""
    return ", ".join(f'"{c}"' for c in columns(conn, *qualified.split(".")))


PARTITIONED_ON_POSTGRES = "core.fact_dossier"


def _partition_name(period: Period) -> str:
    return f"fact_dossier_p{period.start:%Y%m%d}"


def _stage_partition(conn: sa.Connection, period: Period, data: pa.Table) -> str:
    """COPY the period's dossiers into a new table shaped like a partition of core.fact_dossier,
    with the CHECK that lets PostgreSQL attach it without scanning it."""
    prefix = f"{_partition_name(period)}_"
    leftovers = conn.execute(sa.text(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'staging' AND table_name LIKE :p"),
        {"p": prefix + "%"}).scalars().all()
    for name in leftovers:  # from a load that was killed while staging
        conn.exec_driver_sql(f'DROP TABLE staging."{name}"')
    name = prefix + uuid.uuid4().hex[:8]
    conn.exec_driver_sql(f'CREATE TABLE staging."{name}" (LIKE core.fact_dossier INCLUDING DEFAULTS)')
    bulk_insert(conn, f"staging.{name}", data)
    # DDL takes no bind parameters; the literals are ISO dates formatted from date objects
    conn.exec_driver_sql(
        f'ALTER TABLE staging."{name}" ADD CONSTRAINT "{name}_period" CHECK (period_start IS NOT NULL '
        f"AND period_start = DATE '{period.start.isoformat()}' AND period_end = DATE '{period.end.isoformat()}')")
    return name


def _swap_partition(conn: sa.Connection, period: Period, staged: str) -> None:
    partition = _partition_name(period)
    exists = conn.execute(sa.text(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = 'core' AND table_name = :t"),
        {"t": partition}).first()
    if exists:
        conn.exec_driver_sql(f'ALTER TABLE core.fact_dossier DETACH PARTITION core."{partition}"')
        conn.exec_driver_sql(f'DROP TABLE core."{partition}"')
    conn.exec_driver_sql(f'ALTER TABLE staging."{staged}" SET SCHEMA core')
    conn.exec_driver_sql(f'ALTER TABLE core."{staged}" RENAME TO "{partition}"')
    conn.exec_driver_sql(f"ALTER TABLE core.fact_dossier ATTACH PARTITION core.\"{partition}\" "
                         f"FOR VALUES IN ('{period.start.isoformat()}')")


def load_period(engine: sa.Engine, period: Period, run_id: str, *, units: pd.DataFrame,
                conversion: pd.DataFrame | None = None, fields: pd.DataFrame | None = None,
                tables: dict[str, pa.Table | pd.DataFrame]) -> dict[str, int]:
    """`tables` maps each of PERIOD_TABLES to this run's rows for the period. Loads and
    publications of one period wait for each other (`warehouse_lock`): two loads never
    interleave their staging and swap."""
    unknown = set(tables) - set(PERIOD_TABLES)
    if unknown:
        raise ValueError(f"not period tables of the warehouse: {sorted(unknown)}")
    with warehouse_lock(engine, period.label, f"load {run_id}"):
        return _load_period(engine, period, run_id, units=units, conversion=conversion, fields=fields, tables=tables)


def _load_period(engine: sa.Engine, period: Period, run_id: str, *, units: pd.DataFrame,
                 conversion: pd.DataFrame | None, fields: pd.DataFrame | None,
                 tables: dict[str, pa.Table | pd.DataFrame]) -> dict[str, int]:
    period_filter = {"start": period.start, "end": period.end}
    counts: dict[str, int] = {}
    partitioned = engine.dialect.name == "postgresql" and PARTITIONED_ON_POSTGRES in tables
    staged_partition = None
    direct = engine.dialect.name == "duckdb"
    streamed: dict[str, ParquetRows] = {}
    with engine.begin() as conn:
        for target, staged in PERIOD_TABLES.items():
            conn.execute(sa.text(f"DELETE FROM {staged} WHERE period_start = :start AND period_end = :end"),
                         period_filter).close()
            if target not in tables:
                continue
            data = _arrow(tables[target])
            if isinstance(data, ParquetRows):  # streamed: never read whole into memory
                data = _rows_with_run_and_period(data, run_id, period)
            else:
                data = _with_run_and_period(data, run_id, period)
            if partitioned and target == PARTITIONED_ON_POSTGRES:
                staged_partition = _stage_partition(conn, period, data)
                counts[target] = data.num_rows
            elif direct and isinstance(data, ParquetRows):
                # DuckDB: streamed rows go straight into core inside the swap transaction, which is
                # their staging (rolled back whole if anything fails): they are written once, not twice
                streamed[target] = data
                counts[target] = data.num_rows
            else:
                counts[target] = bulk_insert(conn, staged, data)
    with engine.begin() as conn:
        _replace_reference(conn, "core.dim_unit", units)
        if conversion is not None:
            _replace_reference(conn, "core.unit_conversion", conversion)
        if fields is not None:
            _replace_reference(conn, "core.dim_field", fields)
        if staged_partition:
            _swap_partition(conn, period, staged_partition)
        for target, staged in PERIOD_TABLES.items():
            if target not in tables or (staged_partition and target == PARTITIONED_ON_POSTGRES):
                continue
            columns = _columns(conn, target)
            conn.execute(sa.text(f"DELETE FROM {target} WHERE period_start = :start AND period_end = :end"),
                         period_filter).close()
            if target in streamed:
                try:
                    bulk_insert(conn, target, streamed[target])
                except WarehouseLoadError as exc:
                    raise WarehouseLoadError(f"{target}: rows of run {run_id} refused: {exc}") from exc
                continue
            try:
                conn.execute(sa.text(
                    f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {staged} "
                    "WHERE run_id = :run AND period_start = :start AND period_end = :end"),
                    {**period_filter, "run": run_id}).close()
            except sa.exc.DBAPIError as exc:
                if connection_lost(exc) or lacks_privilege(exc):  # the connection or the role, not the rows
                    raise
                raise WarehouseLoadError(f"{target}: rows of run {run_id} refused: {exc.orig}") from exc
            conn.execute(sa.text(f"DELETE FROM {staged} WHERE run_id = :run"), {"run": run_id}).close()
        conn.execute(sa.text(
            "INSERT INTO core.runs (run_id, period_start, period_end, stage, finished_at, detail) "
            "VALUES (:run_id, :start, :end, 'load', :at, :detail)"),
            {"run_id": run_id, **period_filter, "at": datetime.now(timezone.utc).replace(tzinfo=None),
             "detail": json.dumps(counts)}).close()
    return counts
