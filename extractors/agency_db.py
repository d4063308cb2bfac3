"""Agency database of another vendor: read-only SQL through SQLAlchemy, chunked with a
server-side cursor. Table, columns and codes come from the sources registry; identifiers
are validated and quoted by SQLAlchemy, never formatted into SQL. Only the registry's columns
are selected, so the vendor's personal-data columns are never read; the session is
read-only where the database allows it."""
from __future__ import annotations

import csv
import json
import os
import re
from datetime import datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import sqlalchemy as sa

from extractors.base import ExtractError, ExtractJob, Rejected, SourceDataError, SourceUnavailable, finish
from tthc.config import Source, repo_path
from tthc.connections import ConnectionInfo, get_connection
from tthc.landing import RAW_COLUMNS, RECORDS, CanonicalSelect, Manifest, ParquetLanding, landed_column
from tthc.model import DOSSIER_COLUMNS
from tthc.periods import Period
from tthc.sqlsafe import UnsafeIdentifier, check_identifier, quote_identifier

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
            for k, v in (source.spec.get("columns") or {}).items()}


def _fallbacks(source: Source, columns: dict[str, str]) -> dict[str, list[str]]:
    """`fallbacks`: canonical column → vendor columns read, in order, where its own column is NULL
    (OpenCPS ends a cancelled dossier in cancellingDate, a resolved one in releaseDate)."""
    found = {}
    for name, others in (source.spec.get("fallbacks") or {}).items():
        name = _identifier(name, "canonical column name", source.id)
        if name not in columns:
            raise SourceDataError(f"{source.id}: fallbacks.{name}: the entry maps no columns.{name} to fall back from")
        others = others if isinstance(others, list) else [others]
        found[name] = [_identifier(o, f"fallbacks.{name}", source.id) for o in others]
    return found


_CONDITIONS = ("equals", "not_equals", "in", "not_in", "is_null", "gt", "ge", "lt", "le")


def _lookups(source: Source, columns: dict[str, str]) -> dict[str, dict]:
    """`lookups`: canonical column → a join with a table of the same database (`table`, `schema`,
    `join` {dossier column: lookup column}, `value`) or a CSV file of the configuration (`file`,
    `key`, `value`: the CSV's headers; the dossier value looked up is the entry's `columns` one)."""
    found = {}
    for name, spec in (source.spec.get("lookups") or {}).items():
        name = _identifier(name, "lookup name", source.id)
        if name not in DOSSIER_COLUMNS or name == "source_id":
            raise SourceDataError(f"{source.id}: lookups.{name}: not a canonical dossier column")
        if not isinstance(spec, dict) or ("file" in spec) == ("table" in spec):
            raise SourceDataError(f"{source.id}: lookups.{name} needs either `table` (a join) or `file` (a CSV)")
        if "file" in spec:
            if name not in columns:
                raise SourceDataError(f"{source.id}: lookups.{name} (a CSV) looks up the value of columns.{name}, "
                                      "which the entry does not map")
            for key in ("key", "value"):
                if not isinstance(spec.get(key), str) or not spec[key]:
                    raise SourceDataError(f"{source.id}: lookups.{name}.{key} must name a column of the CSV")
            found[name] = {"file": spec["file"], "key": spec["key"], "value": spec["value"]}
            continue
        on = spec.get("join")
        if not isinstance(on, dict) or not on:
            raise SourceDataError(f"{source.id}: lookups.{name}.join must map dossier columns to the lookup's columns")
        found[name] = {
            "table": _identifier(spec["table"], f"lookups.{name}.table", source.id),
            "schema": _identifier(spec["schema"], f"lookups.{name}.schema", source.id) if spec.get("schema") else None,
            "on": {_identifier(k, f"lookups.{name}.join", source.id): _identifier(v, f"lookups.{name}.join", source.id)
                   for k, v in on.items()},
            "value": _identifier(spec.get("value"), f"lookups.{name}.value", source.id),
        }
    return found


def _conditions(where: dict, what: str, source_id: str) -> list[dict]:
    """A filter or a rule's `when`: a mapping {column, <condition>: value} or a list of them."""
    items = where if isinstance(where, list) else [where]
    checked = []
    for item in items:
        if not isinstance(item, dict) or "column" not in item:
            raise SourceDataError(f"{source_id}: {what}: each condition is {{column: …, <test>: …}}")
        tests = [k for k in item if k != "column"]
        if len(tests) != 1 or tests[0] not in _CONDITIONS:
            raise SourceDataError(f"{source_id}: {what}: one test among {_CONDITIONS} per condition, not {tests}")
        value = item[tests[0]]
        if tests[0] in ("in", "not_in") and not isinstance(value, list):
            raise SourceDataError(f"{source_id}: {what}: {tests[0]} takes a list")
        checked.append({"column": _identifier(item["column"], what, source_id), "test": tests[0], "value": value})
    return checked


def _derived(source: Source, columns: dict[str, str], lookups: dict) -> dict[str, list[dict]]:
    """`derived`: canonical column → rules over vendor columns, the first that holds giving the
    landed code (`code`); a rule without `when` always holds."""
    found = {}
    for name, rules in (source.spec.get("derived") or {}).items():
        name = _identifier(name, "derived column", source.id)
        if name not in DOSSIER_COLUMNS or name in columns or name in lookups:
            raise SourceDataError(f"{source.id}: derived.{name}: a canonical column that columns and lookups do not give")
        if not isinstance(rules, list) or not rules:
            raise SourceDataError(f"{source.id}: derived.{name}: a list of rules {{when: …, code: …}}")
        found[name] = [{"when": _conditions(r["when"], f"derived.{name}", source.id) if r.get("when") else [],
                        "code": None if r.get("code") is None else str(r["code"])} for r in rules]
    return found


def _landed_names(source: Source) -> list[str]:
    columns = _columns(source)
    lookups = _lookups(source, columns)
    return list(columns) + [n for n in lookups if n not in columns] + list(_derived(source, columns, lookups))


def landing_schema(source: Source) -> pa.Schema:
    """The registry's canonical column names (columns, then lookups and derived ones), as text."""
    return pa.schema([pa.field(key, pa.string()) for key in _landed_names(source)])


_DATES = ("received_at", "due_at", "finished_at", "returned_at", "paused_at", "updated_at", "entered_at")
_TRUE = "('1', 'true', 'True')"
_NULL = "NULL::VARCHAR"


def canonical(source: Source) -> CanonicalSelect:
    """Landed under canonical names already; text read as timestamps, counts and flags, the
    registry's `mapping` giving the status and channel codes. A canonical column the entry does
    not give is NULL."""
    landed = set(_landed_names(source))
    col = {name: landed_column(name) if name in landed else _NULL for name in DOSSIER_COLUMNS if name != "source_id"}
    values = {name: col[name] for name in ("dossier_id", "procedure_code", "field_code", "unit_code")}
    values |= {name: f"try_cast({col[name]} AS TIMESTAMP)::TIMESTAMP_S" for name in _DATES}
    values |= {
        "fee_amount": f"try_cast({col['fee_amount']} AS BIGINT)",
        "paid_online": f"coalesce({col['paid_online']} IN {_TRUE}, false)" if "paid_online" in landed else "NULL::BOOLEAN",
        "results_digitised": f"{col['results_digitised']} IN {_TRUE}",
    }
    mapping = source.spec.get("mapping", {})
    return CanonicalSelect(values=values, raw={name: col[name] for name in RAW_COLUMNS},
                           codes={name: mapping.get(name, {}) for name in ("channel", "status")})


_OFFSET = re.compile(r"(Z|[+-]\d\d:?\d\d)$")


class TimeShift:
    """The source's stored wall clock (`stored_timezone`) → the province's local wall clock
    (settings timezone), naive as the canonical model's times are. Aware values (timestamptz,
    text with an offset) are converted by their own offset whatever the stored zone."""

    def __init__(self, stored: str | None, local: str, fmt: str | None, where: str):
        try:
            self.local = ZoneInfo(local)
            self.stored = ZoneInfo(stored) if stored else self.local
        except (ZoneInfoNotFoundError, ValueError):
            raise SourceDataError(f"{where}: stored_timezone {stored!r} / timezone {local!r}: not a time zone") from None
        self.name = stored or local
        self.fmt = fmt
        self.same = self.stored.key == self.local.key

    def to_stored(self, moment: datetime) -> datetime:
        """A local wall-clock moment (the period's bounds) on the source's clock."""
        if self.same:
            return moment
        return moment.replace(tzinfo=self.local).astimezone(self.stored).replace(tzinfo=None)

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            if self.same:
                return moment
            moment = moment.replace(tzinfo=self.stored)
        return moment.astimezone(self.local).replace(tzinfo=None)

    def __call__(self, value):
        if value is None or isinstance(value, datetime):
            return None if value is None else self._local(value)
        if not isinstance(value, str) or (self.same and not _OFFSET.search(value)):
            return value
        try:
            moment = datetime.strptime(value, self.fmt) if self.fmt else datetime.fromisoformat(value)
        except ValueError:
            try:  # an offset the format does not have
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value  # landed as it is; canonicalize reports what it cannot read
        if moment.tzinfo is None and self.same:
            return value
        moment = self._local(moment)
        return moment.strftime(self.fmt) if self.fmt else moment.isoformat(sep=" ")


def _csv_lookup(source: Source, name: str, spec: dict) -> dict[str, str]:
    """A unit-id (or other) table of the configuration: CSV with a header row, UTF-8.
    TTHC_SOURCE_<ID>_LOOKUP_<NAME> overrides its path."""
    env = f"TTHC_SOURCE_{source.id.upper()}_LOOKUP_{name.upper()}"
    path = repo_path(os.environ.get(env) or spec["file"])
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in (spec["key"], spec["value"]) if c not in (reader.fieldnames or [])]
            if missing:
                raise SourceDataError(f"{source.id}: lookups.{name}: {path} has no column {missing}")
            table: dict[str, str] = {}
            for line, row in enumerate(reader, start=2):
                key, value = (row[spec["key"]] or "").strip(), (row[spec["value"]] or "").strip()
                if not key or not value:
                    continue
                if table.get(key, value) != value:
                    raise SourceDataError(f"{source.id}: lookups.{name}: {path} line {line}: {key!r} is "
                                          f"{table[key]!r} and {value!r}")
                table[key] = value
    except OSError as exc:
        raise SourceDataError(f"{source.id}: lookups.{name}: cannot read {path} ({env} overrides it): "
                              f"{exc.strerror or exc}") from None
    return table


def _number(value):
    if isinstance(value, bool):
        return int(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(a, b) -> bool:
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return str(a) == str(b)


def _holds(test: str, value, expected) -> bool:
    if test == "is_null":
        return (value is None) == bool(expected)
    if value is None:
        return False
    if test in ("equals", "not_equals"):
        return _same(value, expected) == (test == "equals")
    if test in ("in", "not_in"):
        return any(_same(value, e) for e in expected) == (test == "in")
    number, bound = _number(value), _number(expected)
    if number is None or bound is None:
        return False
    return {"gt": number > bound, "ge": number >= bound, "lt": number < bound, "le": number <= bound}[test]


def _derive(rules: list[dict], row: dict[str, object]) -> str:
    """The code of the first rule that holds, else the values read, shown by canonicalize as unreadable."""
    for rule in rules:
        if all(_holds(c["test"], row[c["column"]], c["value"]) for c in rule["when"]):
            return rule["code"]
    return "; ".join(f"{k}={'NULL' if v is None else v}" for k, v in row.items())


def _filter(column: sa.ColumnElement, test: str, value) -> sa.ColumnElement:
    if test == "is_null":
        return column.is_(None) if value else column.is_not(None)
    if test in ("in", "not_in"):
        return column.in_(value) if test == "in" else column.not_in(value)
    return {"equals": column == value, "not_equals": column != value, "gt": column > value, "ge": column >= value,
            "lt": column < value, "le": column <= value}[test]


def _attachments(conn: ConnectionInfo) -> dict[str, str]:
    """A sqlite connection's `attach` extra {alias: file}: databases attached read-only on
    connect, so that a preset's `schema` (Business, Catalog) names them as it names schemas elsewhere."""
    attach = conn.extra.get("attach") if conn.extra else None
    if not attach:
        return {}
    if isinstance(attach, str):
        try:
            attach = json.loads(attach)
        except ValueError:
            raise SourceDataError(f"connection {conn.conn_id}: extra attach is not JSON") from None
    if conn.conn_type != "sqlite" or not isinstance(attach, dict):
        raise SourceDataError(f"connection {conn.conn_id}: extra attach ({{alias: file}}) is for sqlite connections")
    try:
        return {check_identifier(alias, "attached database alias"): str(path) for alias, path in attach.items()}
    except UnsafeIdentifier as exc:
        raise SourceDataError(f"connection {conn.conn_id}: {exc}") from None


def make_engine(conn: ConnectionInfo) -> sa.Engine:
    engine = sa.create_engine(engine_url(conn))
    attach = _attachments(conn)
    if attach:
        @sa.event.listens_for(engine, "connect")
        def _attach(dbapi_connection, _record):
            for alias, path in attach.items():
                dbapi_connection.execute(f"ATTACH DATABASE ? AS {quote_identifier(alias)}",
                                         (f"file:{quote(path)}?mode=ro",))
    return engine


def extract(source: Source, period: Period, folder: Path, job: ExtractJob) -> Manifest:
    """Land the period's dossiers (or, with `job.updated_since`, those updated since then)."""
    updated_since = job.updated_since
    spec = source.spec
    columns = _columns(source)
    fallbacks = _fallbacks(source, columns)
    lookups = _lookups(source, columns)
    derived = _derived(source, columns, lookups)
    filters = _conditions(spec.get("filters") or [], "filters", source.id)
    for required in (KEY, "received_at", "finished_at") + (("updated_at",) if updated_since else ()):
        if required not in columns:
            raise SourceDataError(f"{source.id}: the registry's columns need {required!r}")
    for required in ("unit_code", "status"):
        if required not in columns and required not in lookups and required not in derived:
            raise SourceDataError(f"{source.id}: the registry gives no {required!r} (columns, lookups or derived)")
    joins = {name: lk for name, lk in lookups.items() if "table" in lk}
    rule_columns = list(dict.fromkeys(c["column"] for rules in derived.values() for r in rules for c in r["when"]))
    selected = list(dict.fromkeys([*columns.values(), *[c for cs in fallbacks.values() for c in cs],
                                   *[c for lk in joins.values() for c in lk["on"]], *rule_columns]))
    personal = set(spec.get("personal_data") or []) & set(selected)
    if personal:
        raise SourceDataError(f"{source.id}: the registry maps personal-data columns {sorted(personal)}: never selected")
    table_name = _identifier(spec["table"], "table", source.id)
    schema = _identifier(spec["schema"], "schema", source.id) if spec.get("schema") else None
    wanted = list(dict.fromkeys([*selected, *[f["column"] for f in filters]]))
    table = sa.table(table_name, *[sa.column(c) for c in wanted], schema=schema)
    c = table.c

    def column(name: str) -> sa.ColumnElement:
        own = c[columns[name]]
        return sa.func.coalesce(own, *[c[o] for o in fallbacks[name]]) if name in fallbacks else own

    fmt = spec.get("date_format")
    shift = TimeShift(spec.get("stored_timezone"), job.settings.timezone, fmt, source.id)
    start = shift.to_stored(datetime.combine(period.start, time.min))
    end = shift.to_stored(datetime.combine(period.end + timedelta(days=1), time.min))
    bind = (lambda d: d.strftime(fmt)) if fmt else (lambda d: d)
    received, finished = column("received_at"), column("finished_at")
    now = shift.to_stored(datetime.now(ZoneInfo(job.settings.timezone)).replace(tzinfo=None))
    in_window = [received < bind(end), sa.or_(finished.is_(None), finished >= bind(start))]
    # records whose received date cannot be right are landed too, never left out unseen: one finished
    # within the period whatever it says it was received (typed 2099, or after its finishing), and
    # one received after the run's moment (canonicalize flags both: records.date_in_future)
    finished_within = [finished >= bind(start), finished < bind(end)]
    received_ahead = [received > bind(now)]
    if fmt:
        # dates stored as text compare as text: a value not shaped like date_format ("không rõ",
        # "02/04/2024") would fall in or out of the window by its first letters. Such rows are
        # landed, and canonicalize reports them, rather than silently left out.
        shape = date_shape(fmt)
        in_window = [sa.or_(in_window[0], sa.not_(received.like(shape))),
                     sa.or_(in_window[1], sa.not_(finished.like(shape)))]
        finished_within.append(finished.like(shape))
        received_ahead.append(received.like(shape))
    if spec.get("window_includes_returned") and "returned_at" in columns:
        # a dossier finished before the period and handed back in it: a vendor's report may count it
        in_window[1] = sa.or_(in_window[1], column("returned_at") >= bind(start))
    in_window = [sa.or_(sa.and_(*in_window), sa.and_(*finished_within), sa.and_(*received_ahead))]
    source_from: sa.FromClause = table
    outputs = [column(key).label(key) for key in columns]
    for i, (name, lk) in enumerate(joins.items()):
        joined = sa.table(lk["table"], *[sa.column(x) for x in dict.fromkeys([*lk["on"].values(), lk["value"]])],
                          schema=lk["schema"]).alias(f"lookup_{i}")
        source_from = source_from.outerjoin(joined, sa.and_(*[c[d] == joined.c[v] for d, v in lk["on"].items()]))
        value = joined.c[lk["value"]]
        # a vendor id without a row in the lookup keeps its own value (an unknown unit downstream)
        value = sa.func.coalesce(value, c[columns[name]]) if name in columns else value
        outputs = [value.label(name) if o.name == name else o for o in outputs]
        if name not in columns:
            outputs.append(value.label(name))
    outputs += [c[name].label(f"rule_{i}") for i, name in enumerate(rule_columns)]
    query = (
        sa.select(*outputs).select_from(source_from)
        .where(*in_window, *[_filter(c[f["column"]], f["test"], f["value"]) for f in filters])
        .order_by(c[columns[KEY]])
    )
    if updated_since is not None:
        query = query.where(c[columns["updated_at"]] >= bind(shift.to_stored(updated_since)))
    csv_tables = {name: _csv_lookup(source, name, lk) for name, lk in lookups.items() if "file" in lk}
    landed_names = _landed_names(source)
    landing = ParquetLanding(folder / LANDED_FILE, landing_schema(source))
    chunk = int(spec.get("chunk_size", 20000))
    rejected: list[dict] = []
    conn_info = get_connection(source.connection_id)
    engine = make_engine(conn_info)
    shown = f"sqlite:{conn_info.host or conn_info.schema}" if conn_info.conn_type == "sqlite" \
        else engine.url.render_as_string(hide_password=True)
    where = f"{source.id}: database {shown}"
    keys = [o.name for o in outputs]
    dates = [i for i, k in enumerate(keys) if k in _DATES]
    rules = {name: [(c["column"], f"rule_{rule_columns.index(c['column'])}") for r in derived[name] for c in r["when"]]
             for name in derived}
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise SourceUnavailable(f"{where}: cannot connect: {exc.orig}") from None
        with conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                # timestamptz values come back, and naive bounds compare, on the source's clock
                conn.execute(sa.select(sa.func.set_config("TimeZone", shift.name, False))).fetchall()
            elif engine.dialect.name == "mysql":
                conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
            _check_table(conn, table_name, schema, wanted, where)
            for lk in joins.values():
                _check_table(conn, lk["table"], lk["schema"], [*lk["on"].values(), lk["value"]], where)
            updated = landed_names.index("updated_at") if "updated_at" in landed_names else None
            ident = landed_names.index(KEY)
            newest = None
            try:
                result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
                for part in result.partitions(chunk):
                    job.check_budget(source.id, f"{landing.rows} rows read")
                    rows = [_landed_row(dict(zip(keys, r)), landed_names, shift if dates else None, csv_tables, derived,
                                        rules) for r in part]
                    without_id = [r for r in rows if r[ident] is None or str(r[ident]).strip() == ""]
                    if without_id:
                        rejected += [dict(zip(landed_names, (None if v is None else str(v) for v in r)))
                                     for r in without_id]
                        rows = [r for r in rows if r[ident] is not None and str(r[ident]).strip() != ""]
                    landing.write({k: [None if r[i] is None else str(r[i]) for r in rows]
                                   for i, k in enumerate(landed_names)})
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
        seen = ", ".join(f"{columns.get(k, k)}={v!r}" for k, v in record.items() if k != KEY and v is not None)
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


def _landed_row(row: dict, landed_names: list[str], shift, csv_tables: dict, derived: dict, rules: dict) -> list:
    """One row as landed: times on the local clock, CSV lookups applied (an id without a row keeps
    its value), derived codes from their rules."""
    if shift:
        for name in _DATES:
            if name in row:
                row[name] = shift(row[name])
    for name, table in csv_tables.items():
        value = row[name]
        if value is not None:
            row[name] = table.get(str(value).strip(), value)
    for name, rule_list in derived.items():
        read = {column: row[label] for column, label in rules[name]}
        row[name] = _derive(rule_list, read)
    return [row[name] for name in landed_names]


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
