"""Load benchmark (warehouse issue): our period load of N dossier records into PostgreSQL
against a bare psycopg COPY of the same rows, in the same run.

    .venv/bin/python bench/load_postgres.py --records 10000000 [--json out.json]

Needs the PostgreSQL server on 127.0.0.1:5432 (trust auth); creates and drops its own
databases. Goal: our load within 2x of the bare COPY.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tthc.model import DOSSIER_SCHEMA  # noqa: E402
from tthc.periods import quarter  # noqa: E402
from warehouse.db import copy_csv, engine_for, migrate  # noqa: E402
from warehouse.load import load_period  # noqa: E402
from tthc.units import units_for_province  # noqa: E402
from tthc.config import load_settings  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PERIOD = quarter("2024-Q2", "calendar_quarter")


def dossiers(n: int, seed: int = 1) -> pa.Table:
    """Synthetic canonical dossier rows: the shape and types of core.fact_dossier."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00:00", "s")
    received = start + rng.integers(0, 180 * 86400, n).astype("timedelta64[s]")
    due = received + rng.integers(1, 30, n).astype("timedelta64[D]").astype("timedelta64[s]")
    finished = received + rng.integers(0, 40 * 86400, n).astype("timedelta64[s]")
    done = rng.random(n) < 0.85
    units = np.array([f"{c:05d}" for c in range(1267, 1267 + 161)])
    fields = np.array(["HT", "CT", "DD", "XD", "BTXH", "NCC"])
    columns = {
        "source_id": pa.array(np.full(n, "portal_dvc")),
        "dossier_id": pa.array(np.char.add("D", np.arange(n).astype(str))),
        "procedure_code": pa.array(np.char.add("1.00", rng.integers(1000, 9999, n).astype(str))),
        "field_code": pa.array(fields[rng.integers(0, len(fields), n)]),
        "unit_code": pa.array(units[rng.integers(0, len(units), n)]),
        "channel": pa.array(np.where(rng.random(n) < 0.5, "online", "in_person")),
        "received_at": pa.array(received),
        "due_at": pa.array(due),
        "finished_at": pa.array(finished, mask=~done),
        "returned_at": pa.array(finished, mask=~done),
        "paused_at": pa.nulls(n, pa.timestamp("s")),
        "status": pa.array(np.where(done, 10, 4).astype("int16")),
        "fee_amount": pa.array(rng.integers(0, 3, n) * 50_000),
        "paid_online": pa.array(rng.random(n) < 0.3),
        "results_digitised": pa.array(rng.random(n) < 0.6),
        "updated_at": pa.array(finished),
    }
    table = pa.table(columns).cast(DOSSIER_SCHEMA)
    return table.append_column("landed_file", pa.array(np.full(n, "landing/2024-Q2/portal_dvc/dossiers.parquet")))


def fresh_database() -> str:
    name = f"tthc_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return name


def drop_database(name: str) -> None:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def bare_copy(url: str, rows: pa.Table) -> float:
    with engine_for(url) as engine:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bare AS SELECT * FROM core.fact_dossier WHERE false")
        started = time.perf_counter()
        with engine.begin() as conn:
            columns = ", ".join(rows.column_names) + ", period_start, period_end, run_id"
            data = rows.append_column("period_start", pa.array([PERIOD.start] * rows.num_rows, pa.date32()))
            data = data.append_column("period_end", pa.array([PERIOD.end] * rows.num_rows, pa.date32()))
            data = data.append_column("run_id", pa.array(["bare"] * rows.num_rows, pa.string()))
            copy_csv(conn.connection.dbapi_connection.cursor(), f"bare ({columns})", data)
        return time.perf_counter() - started


def our_load(url: str, rows: pa.Table, units) -> float:
    with engine_for(url) as engine:
        started = time.perf_counter()
        load_period(engine, PERIOD, "bench", units=units, tables={"core.fact_dossier": rows})
        return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = dossiers(args.records)
    units = units_for_province(load_settings())
    name = fresh_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        with engine_for(url) as engine:
            migrate(engine)
        bare = bare_copy(url, rows)
        ours = our_load(url, rows, units)
        rerun = our_load(url, rows, units)  # replaces the period: the quarterly rerun case
    finally:
        drop_database(name)
    result = {"records": args.records, "bare_copy_s": round(bare, 2), "our_load_s": round(ours, 2),
              "our_rerun_s": round(rerun, 2), "ratio": round(ours / bare, 2), "rerun_ratio": round(rerun / bare, 2),
              "measured_at": datetime.now().isoformat(timespec="seconds"), "date": str(date.today())}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
