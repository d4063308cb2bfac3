"""Engines and migrations. Every schema change is an Alembic migration under
warehouse/migrations; `migrate()` brings any warehouse to the newest one."""
from __future__ import annotations

import io
import logging
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa

from tthc import duck
from tthc.sqlsafe import quote_identifier, quote_qualified
from alembic import command
from alembic.config import Config
from alembic.ddl.impl import DefaultImpl

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMAS = ("staging", "core", "quality", "publish")


log = logging.getLogger(__name__)


class DuckDBImpl(DefaultImpl):
    """Alembic support for DuckDB (duckdb-engine ships none): DDL is transactional."""

    __dialect__ = "duckdb"
    transactional_ddl = True


def normalise_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def with_password(url: str) -> str | sa.URL:
    """The URL with the password of TTHC_WAREHOUSE_PASSWORD (or the file TTHC_WAREHOUSE_PASSWORD_FILE
    names) when it has a user and no password: a deployment keeps the password out of the URL,
    which is shown in summaries and logs."""
    password = os.environ.get("TTHC_WAREHOUSE_PASSWORD")
    if password is None and os.environ.get("TTHC_WAREHOUSE_PASSWORD_FILE"):
        password = Path(os.environ["TTHC_WAREHOUSE_PASSWORD_FILE"]).read_text(encoding="utf-8").strip()
    if password is None or url.startswith("duckdb:"):
        return url
    parsed = sa.make_url(url)
    if parsed.username is None or parsed.password is not None:
        return url
    return parsed.set(password=password)


class WarehouseBusy(RuntimeError):
    """Another process holds the embedded warehouse file for longer than the run waits."""


def wait_seconds() -> float:
    """How long a connection waits for a DuckDB file another process holds (an analyst's open
    session, another run): TTHC_WAREHOUSE_WAIT_SECONDS, 300 by default."""
    return float(os.environ.get("TTHC_WAREHOUSE_WAIT_SECONDS", "300"))


def _waiting_for_the_file(engine: sa.Engine, path: Path) -> sa.Engine:
    """DuckDB lets one process write a file and refuses while another holds it, even read-only:
    each connection retries for `wait_seconds()`, saying once that it waits and for whom."""
    @sa.event.listens_for(engine, "do_connect")
    def connect(dialect, _record, cargs, cparams):
        deadline, told = time.monotonic() + wait_seconds(), False
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except duckdb.IOException as exc:
                if "Could not set lock" not in str(exc):
                    raise
                holder = re.search(r"held in (.+?\(PID \d+\))", str(exc))
                who = holder.group(1) if holder else "another process"
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"the warehouse {path} is held by {who} for more than {wait_seconds():g} s: close that "
                        "session (analysts read the copy the README names, not the file the runs write) or set "
                        "TTHC_WAREHOUSE_WAIT_SECONDS") from None
                if not told:
                    log.warning("warehouse %s is held by %s; waiting up to %g s", path, who, wait_seconds())
                    told = True
                time.sleep(0.5)
    return engine


def make_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    if url.startswith("duckdb:///"):
        path = Path(url.removeprefix("duckdb:///"))
        if str(path) not in ("", ":memory:"):
            path.parent.mkdir(parents=True, exist_ok=True)
        config = duck.config()  # the same bounds as the stages' own connections, when they are set
        args = {"connect_args": {"config": config}} if config else {}
        return _waiting_for_the_file(sa.create_engine(url, poolclass=sa.pool.NullPool, **args), path)
    return sa.create_engine(with_password(url), pool_pre_ping=True)


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


def copy_csv(cursor, target: str, data: "pa.Table | ParquetRows", batch_rows: int = 100_000) -> None:
    """PostgreSQL COPY fed with CSV that Arrow encodes batch by batch (an empty unquoted field
    is NULL, a quoted one an empty string)."""
    options = pacsv.WriteOptions(include_header=False)
    with cursor.copy(f"COPY {target} FROM STDIN (FORMAT csv)") as copy:
        for batch in data.to_batches(batch_rows):
            sink = io.BytesIO()
            pacsv.write_csv(pa.Table.from_batches([batch]), sink, options)
            copy.write(sink.getbuffer())


@dataclass(frozen=True)
class Constant:
    """A column with one value on every row."""

    value: object
    type: pa.DataType


@dataclass(frozen=True)
class Lookup:
    """A text column looked up from another text column of the row (null where the key is not in `mapping`)."""

    key: str
    mapping: tuple[tuple[str, str], ...]

    def column(self, table: pa.Table) -> pa.Array:
        keys = pa.array([k for k, _ in self.mapping], pa.string())
        values = pa.array([v for _, v in self.mapping], pa.string())
        return pc.take(values, pc.index_in(table.column(self.key).cast(pa.string()), value_set=keys))


SQL_TYPES = {pa.string(): "VARCHAR", pa.date32(): "DATE"}


class ParquetRows:
    """The rows of a Parquet file plus columns set on every row (`Constant`, `Lookup`; a column
    of the file with the same name is replaced), never read whole into memory: DuckDB reads
    the file itself (`select_sql`), PostgreSQL gets it batch by batch through COPY."""

    def __init__(self, path: Path, columns: dict | None = None, batch_rows: int = 100_000):
        self.path, self.columns, self.batch_rows = Path(path), dict(columns or {}), batch_rows

    def with_columns(self, **columns) -> "ParquetRows":
        return ParquetRows(self.path, {**self.columns, **columns}, self.batch_rows)

    def _apply(self, table: pa.Table) -> pa.Table:
        for name, spec in self.columns.items():
            if isinstance(spec, Constant):
                column = pa.array([spec.value] * table.num_rows, spec.type)
            else:
                column = spec.column(table)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, column)
            else:
                table = table.append_column(name, column)
        return table

    @property
    def num_rows(self) -> int:
        return pq.read_metadata(self.path).num_rows

    @property
    def schema(self) -> pa.Schema:
        return self._apply(pq.read_schema(self.path).empty_table()).schema

    @property
    def column_names(self) -> list[str]:
        return self.schema.names

    def to_batches(self, batch_rows: int | None = None) -> Iterator[pa.RecordBatch]:
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=batch_rows or self.batch_rows):
            yield from self._apply(pa.Table.from_batches([batch])).to_batches()

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.schema, self.to_batches())

    def to_pylist(self) -> list[dict]:
        return [row for batch in self.to_batches() for row in batch.to_pylist()]

    def select_sql(self, dialect) -> tuple[str, list[str], list]:
        """`SELECT … FROM read_parquet(?)` for DuckDB: the column names, the statement's
        parameters (the file path last). Identifiers are the file's and checked, values are bound."""
        file_names = pq.read_schema(self.path).names
        ordered = [*file_names, *(name for name in self.columns if name not in file_names)]
        parts, params = [], []  # parameters in the order their placeholders appear
        for name in ordered:
            spec = self.columns.get(name)
            if spec is None:
                parts.append(quote_identifier(name, dialect, "column"))
            elif isinstance(spec, Constant):
                parts.append("CAST(? AS " + SQL_TYPES[spec.type] + ")")
                params.append(spec.value)
            else:
                key = quote_identifier(spec.key, dialect, "column")
                parts.append(f"list_extract(CAST(? AS VARCHAR[]), list_position(CAST(? AS VARCHAR[]), {key}))")
                params += [[v for _, v in spec.mapping], [k for k, _ in spec.mapping]]
        return f"SELECT {', '.join(parts)} FROM read_parquet(?)", ordered, [*params, str(self.path)]


class WarehouseLoadError(RuntimeError):
    """Rows were refused by the warehouse; the transaction they were part of is rolled back."""


def bulk_insert(conn: sa.Connection, table: str, data: "pa.Table | ParquetRows") -> int:
    """Insert an Arrow table in bulk inside the caller's transaction: DuckDB reads the Arrow
    data directly, PostgreSQL gets COPY. `table` is one of the warehouse's own qualified names."""
    if data.num_rows == 0:
        return 0
    try:
        _bulk_insert(conn, table, data)
    except (sa.exc.DBAPIError, conn.dialect.loaded_dbapi.Error) as exc:
        raise WarehouseLoadError(f"{table}: {data.num_rows} rows refused: {exc}") from exc
    return data.num_rows


def _bulk_insert(conn: sa.Connection, table: str, data: "pa.Table | ParquetRows") -> None:
    schema, name = table.split(".")
    columns = data.column_names
    quoted = ", ".join(quote_identifier(c, conn.dialect, "column") for c in columns)
    target_q = quote_qualified(table, conn.dialect)
    dialect = conn.dialect.name
    if dialect == "duckdb":
        raw = conn.connection.dbapi_connection
        if isinstance(data, ParquetRows):  # DuckDB reads the file itself, in parallel, in bounded memory
            select, names, params = data.select_sql(conn.dialect)
            quoted = ", ".join(quote_identifier(c, conn.dialect, "column") for c in names)
            conn.exec_driver_sql(f"INSERT INTO {target_q} ({quoted}) {select}", tuple(params)).close()
            return
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
