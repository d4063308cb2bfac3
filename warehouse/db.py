"""Engines and migrations. Every schema change is an Alembic migration under
warehouse/migrations; `migrate()` brings any warehouse to the newest one."""
from __future__ import annotations

import io
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from warehouse.sqlsafe import quote_identifier, quote_qualified
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMAS = ("staging", "core", "quality", "publish")


class DuckDBImpl(DefaultImpl):
    """Alembic support for DuckDB (duckdb-engine ships none): DDL is transactional."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("duckdb:///"):
        path = Path(url.removeprefix("duckdb:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    return sa.create_engine(url, pool_pre_ping=True)


@contextmanager
def engine_for(url: str) -> Iterator[sa.Engine]:
    """An engine that is disposed afterwards: DuckDB allows one writing process per file."""
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def migrate(engine: sa.Engine, revision: str = "head") -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with _duckdb_lock(engine, "migrate"), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def copy_csv(cursor, target: str, data: pa.Table, batch_rows: int = 100_000) -> None:
    """PostgreSQL COPY fed with CSV that Arrow encodes batch by batch (an empty unquoted field
    is NULL, a quoted one an empty string)."""
    options = pacsv.WriteOptions(include_header=False)
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
        for batch in data.to_batches(batch_rows):
            sink = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch]), sink, options)
            copy.write(sink.getbuffer())


class WarehouseLoadError(RuntimeError):
    """Rows were refused by the warehouse; the transaction they were part of is rolled back."""


def bulk_insert(conn: sa.Connection, table: str, data: pa.Table) -> int:
    """Insert an Arrow table in bulk inside the caller's transaction: DuckDB reads the Arrow
    data directly, PostgreSQL gets COPY. `table` is one of the warehouse's own qualified names."""
    if data.num_rows == 0:
        return 0
    try:
        _bulk_insert(conn, table, data)
    except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
        raise WarehouseLoadError(f"{table}: {data.num_rows} rows refused: {exc}") from exc
    return data.num_rows


def _bulk_insert(conn: sa.Connection, table: str, data: pa.Table) -> None:
    schema, name = table.split(".")
    columns = data.column_names
    quoted = ", ".join(quote_identifier(c, conn.dialect, "column") for c in columns)
    target_q = quote_qualified(table, conn.dialect)
    dialect = conn.dialect.name
    if dialect == "duckdb":
        raw = conn.connection.dbapi_connection
        raw.register("_incoming", data)
        try:
            # DuckDB refuses new work on a connection with an unfetched result: close each one
            conn.exec_driver_sql(f"INSERT INTO {target_q} ({quoted}) SELECT {quoted} FROM _incoming").close()
        finally:
            raw.unregister("_incoming")
    elif dialect == "postgresql":
        copy_csv(conn.connection.dbapi_connection.cursor(), f"{target_q} ({quoted})", data)
    else:
        target = sa.table(name, *[sa.column(c) for c in columns], schema=schema)
        conn.execute(sa.insert(target), data.to_pylist())


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock from a name."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"tthc:{name}".encode("utf-8")).digest()[:8], "big", signed=True)


@contextmanager
def warehouse_lock(engine: sa.Engine, period_label: str, what: str) -> Iterator[None]:
    """Serialise the loads and publications of one period across processes and machines.

    PostgreSQL: a session advisory lock keyed on the period, held on a connection of its own
    for the block (a load is two transactions: staging, then the swap) and released by the
    server if the process dies. DuckDB: a `flock` on `<file>.lock` beside the warehouse file
    (DuckDB allows one writing process per file, and a load or publish opens it once per
    transaction). Both wait for the other holder; other dialects take no lock.
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        import logging

        key = _advisory_key(f"period:{period_label}")
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                holder = conn.execute(sa.text(
                    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"),
                    {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF}).first()
                logging.getLogger(__name__).warning(
                    "%s of %s waits for the warehouse lock held by server process %s", what, period_label,
                    holder.pid if holder else "?")
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    elif dialect == "duckdb":
        with _duckdb_lock(engine, f"{what} of {period_label}"):
            yield
    else:
        yield


@contextmanager
def _duckdb_lock(engine: sa.Engine, what: str) -> Iterator[None]:
    """The writers' lock of a DuckDB warehouse file (`<file>.lock`); nothing for other warehouses.
    Not reentrant: take it once per block."""
    from tthc.locks import file_lock

    path = engine.url.database if engine.dialect.name == "duckdb" else None
    if not path or path == ":memory:":
        yield
        return
    with file_lock(Path(f"{path}.lock"), f"the DuckDB warehouse {path} ({what})"):
        yield
