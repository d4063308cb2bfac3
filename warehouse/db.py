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


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be used for this run: the server cannot be reached or refuses the
    login, the embedded file is not a DuckDB database, the role lacks a privilege the load or the
    publication needs, or the connection was lost while loading. `tthc run` exits 6."""


def connection_lost(exc: BaseException) -> bool:
    """Whether a database error means the connection itself failed (server gone, backend
    terminated, refused connection) rather than a statement being refused."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None) or exc
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:  # connection exceptions (08…) and operator intervention (57P01 terminated, 57P02, 57P03)
        return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    # psycopg's own "connection is closed", "server closed the connection unexpectedly": no SQLSTATE
    return type(orig).__name__ == "OperationalError" and type(orig).__module__.startswith("psycopg")


def lacks_privilege(exc: BaseException) -> bool:
    """Whether the server refused a statement for a privilege or an ownership the role lacks."""
    return getattr(getattr(exc, "orig", None) or exc, "sqlstate", None) == "42501"


def first_line(exc: BaseException) -> str:
    """The database's own message, without SQLAlchemy's statement and background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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


CONNECT_TIMEOUT_SECONDS = 10  # a server that does not answer is reported, not waited for


def _as_the_owner_role(engine: sa.Engine) -> sa.Engine:
    """A login granted the role that owns the warehouse (`tthc warehouse-roles` makes `tthc_loader`
    the owner of its schemas and tables) works as that role (SET ROLE): the swap and migration DDL
    needs ownership, and what it creates (a period's partition, a migration's tables) belongs to
    the role, so the next load under another login may replace it. A login that owns the
    warehouse itself, or is no member of its owner, stays as it is."""
    @sa.event.listens_for(engine, "connect")
    def connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(
                "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
                "WHERE n.nspname = 'core' AND r.rolname <> current_user AND pg_has_role(session_user, r.oid, 'MEMBER')")
            owner = cursor.fetchone()
            if owner:
                cursor.execute("SELECT set_config('role', %s, false)", (owner[0],))
        finally:
            cursor.close()
        dbapi_connection.commit()
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
    args = {}
    if url.startswith("postgresql") and "connect_timeout" not in url:
        args["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    engine = sa.create_engine(with_password(url), pool_pre_ping=True, **args)
    return _as_the_owner_role(engine) if engine.dialect.name == "postgresql" else engine


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
        if revision == "head":
            from warehouse.comments import apply_dictionary

            apply_dictionary(conn, conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())


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
        if connection_lost(exc) or lacks_privilege(exc):  # the connection or the role, not the rows
            raise
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


# The period's row of core.period_locks, locked for the block: FOR UPDATE needs UPDATE on the
# table, which only the loader (its owner) has, so a reader cannot take the load's lock.
LOCK_PERIOD_ROW = "SELECT period_label FROM core.period_locks WHERE period_label = :p FOR UPDATE"
# who holds the row: its xmax is the holder's transaction, whose own lock pg_locks lists
LOCK_HOLDER = """
    SELECT a.pid, a.application_name, a.backend_start FROM core.period_locks t
    JOIN pg_locks l ON l.locktype = 'transactionid' AND l.transactionid = t.xmax
     AND l.mode = 'ExclusiveLock' AND l.granted
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE t.period_label = :p
"""


@contextmanager
def warehouse_lock(engine: sa.Engine, period_label: str, what: str) -> Iterator[None]:
    """Serialise the loads and publications of one period across processes and machines.

    PostgreSQL: the period's row of `core.period_locks` locked FOR UPDATE in a transaction held
    open on a connection of its own for the block (a load is two transactions: staging, then the
    swap); the server releases it if the process dies. Only a role with UPDATE on that table (the
    loader) can take it: an analyst's session cannot make loads wait, as it could with an advisory
    lock, which any role may take. DuckDB: a `flock` on `<file>.lock` beside the warehouse file
    (DuckDB allows one writing process per file, and a load or publish opens it once per
    transaction). Both wait for the other holder; other dialects take no lock.
    """
    dialect = engine.dialect.name
    if dialect == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("INSERT INTO core.period_locks (period_label) VALUES (:p) ON CONFLICT DO NOTHING"),
                         {"p": period_label})
            conn.commit()
            try:
                conn.execute(sa.text(LOCK_PERIOD_ROW + " NOWAIT"), {"p": period_label}).all()
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
                conn.rollback()
                holder = conn.execute(sa.text(LOCK_HOLDER), {"p": period_label}).first()
                log.warning("%s of %s waits for the warehouse lock held by server process %s", what, period_label,
                            holder.pid if holder else "?")
                conn.execute(sa.text(LOCK_PERIOD_ROW), {"p": period_label}).all()
            try:
                yield
            except BaseException:
                _release(conn, period_label, quietly=True)  # the block's own error is the one to report
                raise
            _release(conn, period_label)
    elif dialect == "duckdb":
        with _duckdb_lock(engine, f"{what} of {period_label}"):
            yield
    else:
        yield


def _release(conn: sa.Connection, period_label: str, quietly: bool = False) -> None:
    """End the lock's transaction. If its connection is gone the server has released the lock
    already: that is logged, never raised over the block's own outcome."""
    try:
        conn.rollback()
    except sa.exc.DBAPIError as exc:
        if not (quietly or connection_lost(exc)):
            raise
        log.warning("the warehouse lock of %s was released with its lost connection: %s", period_label,
                    first_line(exc))


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
