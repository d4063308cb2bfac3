"""Agency database of another vendor: read-only SQL through SQLAlchemy, chunked with a
server-side cursor. Table, columns and codes come from the sources registry; identifiers
are validated and quoted by SQLAlchemy, never formatted into SQL."""
from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from extractors.base import Manifest, ParquetLanding, SourceDataError, SourceUnavailable, now_utc
from tthc.config import Source
from tthc.connections import ConnectionInfo, get_connection
from tthc.periods import Period

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgres": "postgresql+psycopg",
            "postgresql": "postgresql+psycopg"}


def engine_url(conn: ConnectionInfo) -> sa.URL:
    if conn.conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise SourceDataError(f"connection {conn.conn_id}: a sqlite connection needs the file path as host")
        return sa.URL.create("sqlite", database=path)
    driver = _DRIVERS.get(conn.conn_type)
    if driver is None:
        raise SourceDataError(f"connection {conn.conn_id}: unsupported database type {conn.conn_type!r}")
    return sa.URL.create(driver, username=conn.login, password=conn.password, host=conn.host,
                         port=conn.port, database=conn.schema or None)


def _identifier(name: str, what: str, source_id: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise SourceDataError(f"{source_id}: {what} {name!r} is not a plain SQL identifier")
    return name


def _check_table(conn: sa.Connection, table: str, schema: str | None, wanted: list[str], where: str) -> None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(table, schema=schema):
        raise SourceDataError(f"{where}: no table {table!r} (the sources registry names it)")
    present = {c["name"] for c in inspector.get_columns(table, schema=schema)}
    missing = [c for c in wanted if c not in present]
    if missing:
        raise SourceDataError(f"{where}: table {table!r} does not have the registry's columns {missing}")


def extract(source: Source, period: Period, folder: Path, run_id: str) -> Manifest:
    spec = source.spec
    columns: dict[str, str] = {k: _identifier(v, f"column for {k}", source.id) for k, v in spec["columns"].items()}
    table = sa.table(_identifier(spec["table"], "table", source.id), *[sa.column(c) for c in columns.values()],
                     schema=spec.get("schema"))
    c = table.c
    start = datetime.combine(period.start, time.min)
    end = datetime.combine(period.end + timedelta(days=1), time.min)
    fmt = spec.get("date_format")
    bind = (lambda d: d.strftime(fmt)) if fmt else (lambda d: d)
    received, finished = c[columns["received_at"]], c[columns["finished_at"]]
    query = (
        sa.select(*[c[name].label(key) for key, name in columns.items()])
        .where(received < bind(end))
        .where(sa.or_(finished.is_(None), finished >= bind(start)))
        .order_by(c[columns["dossier_id"]])
    )
    schema = pa.schema([pa.field(key, pa.string()) for key in columns])
    landing = ParquetLanding(folder / "dossiers.parquet", schema)
    chunk = int(spec.get("chunk_size", 20000))
    conn_info = get_connection(source.connection_id)
    engine = sa.create_engine(engine_url(conn_info))
    where = f"{source.id}: database {engine.url.render_as_string(hide_password=True)}"
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SourceUnavailable(f"{where}: cannot connect: {exc.orig}") from None
        with conn:
            _check_table(conn, spec["table"], spec.get("schema"), list(columns.values()), where)
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            keys = list(columns)
            try:
                result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
                for rows in result.partitions(chunk):
                    landing.write({k: [None if r[i] is None else str(r[i]) for r in rows] for i, k in enumerate(keys)})
            except sa.exc.DBAPIError as exc:
                raise SourceUnavailable(f"{where}: reading {spec['table']!r} failed: {exc.orig}") from None
    finally:
        engine.dispose()
    file_info = landing.close()
    return Manifest(
        source_id=source.id, kind=source.kind, period=period.as_dict(), status="ok", extracted_at=now_utc(),
        run_id=run_id, files=[file_info], rows=file_info["rows"],
    )
