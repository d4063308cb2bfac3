"""Agency database of another vendor: read-only SQL through SQLAlchemy, chunked with a
server-side cursor. Table, columns and codes come from the sources registry; identifiers
are validated and quoted by SQLAlchemy, never formatted into SQL. Only the registry's columns
are selected, so the vendor's personal-data columns are never read; the session is
read-only where the database allows it."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from extractors.base import ExtractError, ExtractJob, Rejected, SourceDataError, SourceUnavailable, finish
from tthc.config import Source
from tthc.connections import ConnectionInfo, get_connection
from tthc.landing import RAW_COLUMNS, RECORDS, CanonicalSelect, Manifest, ParquetLanding, landed_column
from tthc.model import DOSSIER_COLUMNS
from tthc.periods import Period
from tthc.sqlsafe import UnsafeIdentifier, check_identifier

KIND = "agency_db"
BASIS = RECORDS
KEY = "dossier_id"
LANDED_FILE = "dossiers.parquet"
_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgres": "postgresql+psycopg",
            "postgresql": "postgresql+psycopg"}


def engine_url(conn: ConnectionInfo) -> sa.URL:
    if conn.conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise SourceDataError(f"connection {conn.conn_id}: a sqlite connection needs the file path as host")
        return sa.URL.create("sqlite", database=f"file:{path}", query={"mode": "ro", "uri": "true"})
    driver = _DRIVERS.get(conn.conn_type)
    if driver is None:
        raise SourceDataError(f"connection {conn.conn_id}: unsupported database type {conn.conn_type!r}")
    return sa.URL.create(driver, username=conn.login, password=conn.password, host=conn.host,
                         port=conn.port, database=conn.schema or None)


def _identifier(name: str, what: str, source_id: str) -> str:
    """A registry name checked as every identifier is (tthc.sqlsafe), refused as bad source
    configuration that names the source."""
    try:
        return check_identifier(name, what)
    except UnsafeIdentifier as exc:
        raise SourceDataError(f"{source_id}: {exc}") from None


def _check_table(conn: sa.Connection, table: str, schema: str | None, wanted: list[str], where: str) -> None:
    inspector = sa.inspect(conn)
    if not inspector.has_table(table, schema=schema):
        raise SourceDataError(f"{where}: no table {table!r} (the sources registry names it)")
    present = {c["name"] for c in inspector.get_columns(table, schema=schema)}
    missing = [c for c in wanted if c not in present]
    if missing:
        raise SourceDataError(f"{where}: table {table!r} does not have the registry's columns {missing}")


def date_shape(fmt: str) -> str:
    """A LIKE pattern that every date written with `fmt` matches ('%Y-%m-%d' → '____-__-__')."""
    widths = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "y": 2, "f": 6}
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append("_" * widths.get(fmt[i + 1], 1) if fmt[i + 1] in widths else "%")
            i += 2
        else:
            out.append("_" if fmt[i] in "%_" else fmt[i])
            i += 1
    return "".join(out)


def _columns(source: Source) -> dict[str, str]:
    """The registry's `columns`: canonical name → vendor column, both checked identifiers."""
    return {_identifier(k, "canonical column name", source.id): _identifier(v, f"column for {k}", source.id)
            for k, v in source.spec["columns"].items()}


def landing_schema(source: Source) -> pa.Schema:
    """The registry's canonical column names, in its order, as text."""
    return pa.schema([pa.field(key, pa.string()) for key in _columns(source)])


_DATES = ("received_at", "due_at", "finished_at", "returned_at", "updated_at")
_TRUE = "('1', 'true', 'True')"


def canonical(source: Source) -> CanonicalSelect:
    """Landed under canonical names already; text read as timestamps, counts and flags, the
    registry's `mapping` giving the status and channel codes."""
    col = {name: landed_column(name) for name in DOSSIER_COLUMNS if name != "source_id"}
    values = {name: col[name] for name in ("dossier_id", "procedure_code", "field_code", "unit_code")}
    values |= {name: f"try_cast({col[name]} AS TIMESTAMP)::TIMESTAMP_S" for name in _DATES}
    values |= {
        "fee_amount": f"try_cast({col['fee_amount']} AS BIGINT)",
        "paid_online": f"coalesce({col['paid_online']} IN {_TRUE}, false)",
        "results_digitised": f"{col['results_digitised']} IN {_TRUE}",
    }
    mapping = source.spec.get("mapping", {})
    return CanonicalSelect(values=values, raw={name: col[name] for name in RAW_COLUMNS},
                           codes={name: mapping.get(name, {}) for name in ("channel", "status")})


def extract(source: Source, period: Period, folder: Path, job: ExtractJob) -> Manifest:
    """Land the period's dossiers (or, with `job.updated_since`, those updated since then)."""
    updated_since = job.updated_since
    spec = source.spec
    columns = _columns(source)
    for required in (KEY, "received_at", "finished_at") + (("updated_at",) if updated_since else ()):
        if required not in columns:
            raise SourceDataError(f"{source.id}: the registry's columns need {required!r}")
    personal = set(spec.get("personal_data") or []) & set(columns.values())
    if personal:
        raise SourceDataError(f"{source.id}: the registry maps personal-data columns {sorted(personal)}: never selected")
    table = sa.table(_identifier(spec["table"], "table", source.id), *[sa.column(c) for c in columns.values()],
                     schema=_identifier(spec["schema"], "schema", source.id) if spec.get("schema") else None)
    c = table.c
    start = datetime.combine(period.start, time.min)
    end = datetime.combine(period.end + timedelta(days=1), time.min)
    fmt = spec.get("date_format")
    bind = (lambda d: d.strftime(fmt)) if fmt else (lambda d: d)
    received, finished = c[columns["received_at"]], c[columns["finished_at"]]
    in_window = [received < bind(end), sa.or_(finished.is_(None), finished >= bind(start))]
    if fmt:
        # dates stored as text compare as text: a value not shaped like date_format ("không rõ",
        # "02/04/2024") would fall in or out of the window by its first letters. Such rows are
        # landed, and canonicalize reports them, rather than silently left out.
        shape = date_shape(fmt)
        in_window = [sa.or_(in_window[0], sa.not_(received.like(shape))),
                     sa.or_(in_window[1], sa.not_(finished.like(shape)))]
    query = (
        sa.select(*[c[name].label(key) for key, name in columns.items()])
        .where(*in_window)
        .order_by(c[columns[KEY]])
    )
    if updated_since is not None:
        query = query.where(c[columns["updated_at"]] >= bind(updated_since))
    landing = ParquetLanding(folder / LANDED_FILE, landing_schema(source))
    chunk = int(spec.get("chunk_size", 20000))
    rejected: list[dict] = []
    conn_info = get_connection(source.connection_id)
    engine = sa.create_engine(engine_url(conn_info))
    shown = f"sqlite:{conn_info.host or conn_info.schema}" if conn_info.conn_type == "sqlite" \
        else engine.url.render_as_string(hide_password=True)
    where = f"{source.id}: database {shown}"
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SourceUnavailable(f"{where}: cannot connect: {exc.orig}") from None
        with conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif engine.dialect.name == "mysql":
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
            _check_table(conn, spec["table"], spec.get("schema"), list(columns.values()), where)
            keys = list(columns)
            updated = keys.index("updated_at") if "updated_at" in keys else None
            ident = keys.index(KEY)
            newest = None
            try:
                result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
                for rows in result.partitions(chunk):
                    without_id = [r for r in rows if r[ident] is None or str(r[ident]).strip() == ""]
                    if without_id:
                        rejected += [dict(zip(keys, (None if v is None else str(v) for v in r))) for r in without_id]
                        rows = [r for r in rows if r[ident] is not None and str(r[ident]).strip() != ""]
                    landing.write({k: [None if r[i] is None else str(r[i]) for r in rows] for i, k in enumerate(keys)})
                    stamps = [r[updated] for r in rows if r[updated] is not None] if updated is not None else []
                    if stamps:
                        newest = max(newest, max(stamps)) if newest is not None else max(stamps)
            except sa.exc.DBAPIError as exc:
                raise SourceUnavailable(f"{where}: reading {spec['table']!r} failed: {exc.orig}") from None
    except BaseException:
        landing.abort()
        raise
    finally:
        engine.dispose()
    file_info = landing.close()
    vendor_key = columns[KEY]
    rejected_rows = []
    for record in rejected:
        seen = ", ".join(f"{columns[k]}={v!r}" for k, v in record.items() if k != KEY and v is not None)
        rejected_rows.append(Rejected(
            ExtractError(f"{where}: table {spec['table']!r}: a row with {vendor_key} "
                         f"{'NULL' if record[KEY] is None else repr(record[KEY])} (no dossier code; {seen}): not landed",
                         file=f"table {spec['table']}", column=vendor_key, unit_code=record.get("unit_code"),
                         location=f"{source.id}: table {spec['table']}, column {vendor_key}"),
            {"table": spec["table"], "reason": f"no dossier code ({vendor_key} is NULL or empty)", "fields": record}))
    return finish(
        source, period, job, file_info, rejected=rejected_rows, quarantine_name=f"{source.id}_rejected_rows.jsonl",
        stats={"rejected_rows": len(rejected), "max_updated_at": _moment(newest, fmt, where),
               "updated_since": updated_since.isoformat() if updated_since else None},
    )


def _moment(value, fmt: str | None, where: str) -> str | None:
    """The newest update as an ISO moment, whatever type the database gave."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat()
    try:
        return (datetime.strptime(str(value), fmt) if fmt else datetime.fromisoformat(str(value))).isoformat()
    except ValueError:
        raise SourceDataError(f"{where}: update moment {value!r} is not a date (date_format {fmt!r})") from None
