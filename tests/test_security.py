"""Security, proven: credentials and personal data never reach a log, a landed file, a run
folder, the warehouse or a published file; errors do not echo credentials; no SQL is built
by formatting configuration or data into it; values from sources cannot make the pipeline
write outside the landing and quarantine folders.

The leak tests run every stage in process on the 2 % sample with credentials set only
through `AIRFLOW_CONN_*` variables: a bearer token (portal), a basic-auth password (a second
portal source) and a MariaDB password (the agency database, copied into a MariaDB database
with a login of its own). Process output is captured at the file-descriptor level
and Python logging at DEBUG (requests, urllib3 and SQLAlchemy included). Every byte under
var/ is searched, and compressed containers (Parquet, DuckDB, .xlsx) are searched decoded.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import sqlite3
import uuid
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import REPO, require_service

PERIOD = "2024-Q2"
BASIC_LOGIN = "tthc_sync"


# ---------------------------------------------------------------------------------------------
# helpers: a second portal source, a PostgreSQL copy of the agency database, and the scan


def _sources_file(folder: Path) -> Path:
    """The project's registry plus a portal source authenticated with basic auth."""
    doc = yaml.safe_load((REPO / "config" / "sources.yaml").read_text(encoding="utf-8"))
    portal = next(s for s in doc["sources"] if s["id"] == "portal_dvc")
    basic = {**portal, "id": "portal_basic", "connection_id": "tthc_portal_basic",
             "description": "the same software synced by a second client with basic auth",
             "covers": [{"level": "department", "units": ["000.00.01.H04"], "complete": False}]}
    doc["sources"].append(basic)
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def agency_mariadb(small_sample):
    """The sample's agency table (personal-data columns included) in a MariaDB database
    readable by a login whose password is a secret (MariaDB checks it; the local PostgreSQL
    trusts every login); yields (user, password, database)."""
    require_service("MariaDB", 3306, "sudo service mariadb start (root without password on 127.0.0.1)")
    suffix = uuid.uuid4().hex[:8]
    user, database = f"tthc_sec_{suffix}", f"tthc_sec_{suffix}"
    password = f"my-Pw@{suffix}/:%+{uuid.uuid4().hex[:12]}"  # characters a URI must escape
    admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/")
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{database}`")
        conn.execute(sa.text(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY :password"), {"password": password})
        conn.exec_driver_sql(f"GRANT SELECT ON `{database}`.* TO '{user}'@'127.0.0.1'")
    owner = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:3306/{database}")
    try:
        with sqlite3.connect(small_sample / "agency_db" / "agency.sqlite") as src:
            frame = pd.read_sql_query("SELECT * FROM hs_hoso", src)
        with owner.begin() as conn:
            frame.to_sql("hs_hoso", conn, index=False)
        yield user, password, database
    finally:
        owner.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{database}`")
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        admin.dispose()


@pytest.fixture
def debug_logs():
    """Every record of every logger at DEBUG, formatted with tracebacks, for the test."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    loggers = [root] + [logging.getLogger(n) for n in ("urllib3", "requests", "sqlalchemy", "sqlalchemy.engine",
                                                      "extractors", "tthc", "warehouse", "transforms")]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        for lg, level in saved:
            lg.setLevel(level)


def secret_forms(secret: str, login: str | None = None) -> set[str]:
    """The secret as written, URL-encoded both ways, and as a basic-auth header carries it."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
    if login is not None:
        forms.add(base64.b64encode(f"{login}:{secret}".encode()).decode())
    return forms


def readable_texts(root: Path) -> dict[str, str]:
    """Every file under `root` as text: the raw bytes, and for containers that compress
    (Parquet, DuckDB, .xlsx and other zips) the decoded contents too."""
    texts: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        parts = [raw.decode("utf-8", errors="replace"), raw.decode("latin-1")]
        if path.suffix == ".parquet":
            parts.append(pd.read_parquet(path).to_csv(index=False))
        elif path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as con:
                for schema, name in con.sql("SELECT table_schema, table_name FROM information_schema.tables").fetchall():
                    parts.append(con.sql(f'SELECT * FROM "{schema}"."{name}"').df().to_csv(index=False))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                parts += [archive.read(n).decode("utf-8", errors="replace") for n in archive.namelist()]
        texts[str(path.relative_to(root))] = "\n".join(parts)
    return texts


def find(needles: set[str], texts: dict[str, str]) -> list[tuple[str, str]]:
    """(where, needle, the text around it) for every needle found."""
    return [(where, needle, text[max(0, text.index(needle) - 200):text.index(needle) + 100])
            for where, text in texts.items() for needle in needles if needle and needle in text]


def personal_values(sample: Path) -> list[str]:
    values = (sample / "ground_truth" / "personal_values.txt").read_text(encoding="utf-8").split("\n")
    return [v for v in values if len(v) >= 8]


# ---------------------------------------------------------------------------------------------
# leak tests


def _connections(portal_port: int, basic_port: int, token: str, basic_password: str,
                 db: tuple[str, str, str], host_with_credentials: bool = False) -> dict[str, str]:
    user, password, database = db
    basic = {"conn_type": "http", "host": "127.0.0.1", "port": basic_port, "schema": "http",
             "login": BASIC_LOGIN, "password": basic_password, "extra": {"auth_type": "basic"}}
    if host_with_credentials:  # an operator who pasted the credentials into the host field
        basic = {"conn_type": "http", "extra": {"auth_type": "basic"},
                 "host": f"http://{BASIC_LOGIN}:{quote(basic_password, safe='')}@127.0.0.1:{basic_port}"}
    return {
        "AIRFLOW_CONN_TTHC_PORTAL_DVC": json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": portal_port, "schema": "http",
            "password": token, "extra": {"auth_type": "bearer"}}),
        "AIRFLOW_CONN_TTHC_PORTAL_BASIC": json.dumps(basic),
        "AIRFLOW_CONN_TTHC_AGENCY_DB_XD_TNMT":
            f"mysql://{user}:{quote(password, safe='')}@127.0.0.1:3306/{database}?charset=utf8mb4",
    }


@pytest.fixture
def servers(small_sample):
    from simulator.server import serve

    token, basic_password = f"tok-{uuid.uuid4().hex}", f"basic-{uuid.uuid4().hex[:10]}:/@ +x"
    portal, basic = serve(small_sample, token), serve(small_sample, basic_password)
    try:
        yield portal, basic, token, basic_password
    finally:
        portal.shutdown()
        basic.shutdown()


def test_no_secret_or_personal_value_reaches_logs_files_or_the_warehouse(
        small_sample, agency_mariadb, servers, var, tmp_path, monkeypatch, capfd, debug_logs):
    from runner import pipeline

    portal, basic, token, basic_password = servers
    from runner.local_sources import vendor_connections

    for key, value in {**_connections(portal.port, basic.port, token, basic_password, agency_mariadb),
                       **vendor_connections(small_sample)}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TTHC_SOURCES_FILE", str(_sources_file(tmp_path)))
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(small_sample / "spreadsheets"))

    ctx = pipeline.make_context(PERIOD, run_id="manual__security")
    summary = pipeline.run(ctx)

    # every source landed with its credentials: the secrets were really used
    landed = json.loads(ctx.files.sources.read_text(encoding="utf-8"))
    assert landed["missing"] == {}, landed["missing"]
    assert {"portal_dvc", "portal_basic", "agency_db_xd_tnmt", "commune_spreadsheets"} <= set(landed["landed"])
    assert summary["published"] and (var / "publish" / PERIOD / "v1").is_dir()
    assert portal.api_requests > 0 and basic.api_requests > 0

    out, err = capfd.readouterr()
    logs = debug_logs.getvalue()
    assert "urllib3.connectionpool" in logs  # the debug logs really were captured
    texts = readable_texts(var) | {"<stdout>": out, "<stderr>": err, "<logging>": logs,
                                   "<summary>": json.dumps(summary, default=str)}
    assert {"warehouse.duckdb"} <= set(texts) and any(k.startswith("runs/") for k in texts)
    assert any(k.endswith(".xlsx") for k in texts) and any(k.startswith("landing/") for k in texts)
    secrets_ = secret_forms(token) | secret_forms(basic_password, BASIC_LOGIN) | secret_forms(agency_mariadb[1])
    assert find(secrets_, texts) == []

    # personal data sent by the sources (the portal's JSON, the vendor table's columns) is
    # nowhere: not landed, not in run folders or quarantine, not in the warehouse, not in
    # the published files (decoded .xlsx included), not in any log
    values = personal_values(small_sample)
    assert values
    leaked = find(set(values), texts)
    assert leaked == [], f"personal values reached the pipeline's outputs: {leaked[:3]}"


def test_a_failing_source_does_not_echo_its_credentials(
        small_sample, agency_mariadb, servers, var, tmp_path, monkeypatch, capfd, debug_logs):
    """Wrong token (401), wrong basic password given inside the host URL (401), wrong
    database password: every error text, failed.json and finding stays free of them."""
    from runner import pipeline

    portal, basic, _token, _basic_password = servers
    user, _, database = agency_mariadb
    wrong_token, wrong_basic, wrong_db = (f"wrong-tok-{uuid.uuid4().hex}", f"wrong-basic-{uuid.uuid4().hex[:8]}",
                                          f"wrong-db-{uuid.uuid4().hex[:8]}@/:")
    env = _connections(portal.port, basic.port, wrong_token, wrong_basic, (user, wrong_db, database),
                       host_with_credentials=True)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TTHC_SOURCES_FILE", str(_sources_file(tmp_path)))
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(small_sample / "spreadsheets"))

    ctx = pipeline.make_context(PERIOD, run_id="manual__failing")
    errors = {}
    for source_id in ("portal_dvc", "portal_basic", "agency_db_xd_tnmt"):
        with pytest.raises(Exception) as caught:
            pipeline.extract(ctx, source_id)
        errors[source_id] = f"{caught.type.__name__}: {caught.value}\n{caught.getrepr(style='long')}"
    assert "401" in errors["portal_dvc"] and "401" in errors["portal_basic"]
    assert "Access denied" in errors["agency_db_xd_tnmt"]
    pipeline.extract(ctx, "commune_spreadsheets")
    pipeline.canonicalize(ctx)  # the failures become extract.source_missing findings
    findings = pd.read_parquet(ctx.files.findings_canonicalize)
    assert set(findings.loc[findings["check_id"] == "extract.source_missing", "source_id"]) >= set(errors)

    out, err = capfd.readouterr()
    texts = readable_texts(var) | {"<stdout>": out, "<stderr>": err, "<logging>": debug_logs.getvalue()} | {
        f"<error {k}>": v for k, v in errors.items()}
    assert any(k.endswith("failed.json") for k in texts)
    secrets_ = secret_forms(wrong_token) | secret_forms(wrong_basic, BASIC_LOGIN) | secret_forms(wrong_db)
    assert find(secrets_, texts) == []


# ---------------------------------------------------------------------------------------------
# SQL is never assembled from configuration or data

# path::function → why its formatted SQL takes nothing from configuration or data
SQL_FORMATTING_ALLOWED = {
    "bench/load_postgres.py::fresh_database": "benchmark script: the database name is made by the script (uuid)",
    "bench/load_postgres.py::drop_database": "benchmark script: the database name is made by the script (uuid)",
    "bench/validate.py::make_records": "benchmark script: sizes are integers of the script, paths are its own",
    "simulator/vendors.py::_insert":
        "the simulator's own vendor table and column names (constants of the module); values are bound parameters",
    "transforms/canonicalize.py::canonical_dossiers":
        "view names are raw_<n>; expressions are the kinds' canonical selects (tthc.landing.CanonicalSelect): fixed "
        "text and landed column names through landed_column/quote_identifier, never values from config or data",
    "transforms/canonicalize.py::_problems":
        "conditions and columns from the module's own table of checks (_checks, DATE_COLUMNS); the moment is a datetime",
    "warehouse/db.py::_bulk_insert":
        "ParquetRows.select_sql: identifiers are the Parquet file's column names through quote_identifier, types "
        "from SQL_TYPES; every value (constants, lookups, the file path) is a bind parameter",
    "warehouse/db.py::copy_csv": "target is built by _bulk_insert from quote_qualified/quote_identifier",
    "warehouse/load.py::_replace_reference": "table is one of the warehouse's own names written in load_period",
    "warehouse/load.py::_stage_partition":
        "partition names are fact_dossier_p<yyyymmdd>_<hex> made from a date and uuid; DDL takes no bind parameters",
    "warehouse/load.py::_swap_partition": "same partition names; the FOR VALUES literal is date.isoformat()",
    "warehouse/load.py::_load_period":
        "target/staged come from PERIOD_TABLES (unknown names are refused first); columns from information_schema",
    "warehouse/migrations/versions/0004_publish_views.py::upgrade": "migration DDL: column lists from FIGURES",
    "warehouse/migrations/versions/0009_analyst_views.py::upgrade": "migration DDL: column lists from FIGURES and the "
        "module's constants (the quarter label's expression, the reform's date)",
    "warehouse/migrations/versions/0009_analyst_views.py::downgrade": "migration DDL: the module's constants",
    "warehouse/comments.py::apply_dictionary":
        "COMMENT takes no bind parameters: the kind is TABLE or VIEW and the schema publish or quality, from "
        "relations()'s own catalog filter; names through quote_identifier; the text is the repository's data "
        "dictionary's, through quote_literal",
    "warehouse/analyst_copy.py::refresh_analyst_copy":
        "the two file paths are the pipeline's own (the warehouse URL's file, var/analyst with a uuid staging name), "
        "quoted as literals because ATTACH takes no bind parameters; schemas are the module's constants; table and "
        "column names come from DuckDB's catalog through quote_identifier; comments are the repository's data "
        "dictionary's (COMMENT takes no bind parameters)",
}


def test_no_sql_is_formatted_from_configuration_or_data():
    from tests.support.sql_formatting import scan

    offenders = scan(REPO)
    unexplained = [f"{o.path}:{o.line} {o.function}: {o.code}" for o in offenders if o.key not in SQL_FORMATTING_ALLOWED]
    assert unexplained == [], "SQL formatted from values: use bind parameters or tthc.sqlsafe.quote_identifier"
    stale = sorted(set(SQL_FORMATTING_ALLOWED) - {o.key for o in offenders})
    assert stale == [], f"allowlist entries that no longer format SQL: remove them: {stale}"


def test_the_sql_checker_catches_formatting_from_values(tmp_path):
    from tests.support.sql_formatting import scan

    (tmp_path / "bad.py").write_text('''
import sqlalchemy as sa
TABLE = "core.x"
def f(conn, table, value, spec):
    conn.execute(sa.text(f"SELECT * FROM {table}"))                  # a parameter
    conn.exec_driver_sql("DELETE FROM x WHERE a = '%s'" % value)     # %-format
    conn.execute("SELECT * FROM " + spec["table"])                    # concatenation from config
    sql = "SELECT {} FROM t".format(value)
    conn.execute(sql)                                                 # through a variable
    for name in spec["columns"]:
        conn.execute(f"SELECT {name} FROM t")                          # loop over config
def run_sql(conn, statement):
    conn.exec_driver_sql(statement.strip() if statement else statement)
def g(conn, value):
    run_sql(conn, f"DELETE FROM x WHERE a = {value}")                  # through the project's own wrapper
''', encoding="utf-8")
    (tmp_path / "good.py").write_text('''
import sqlalchemy as sa
from tthc.sqlsafe import quote_identifier
TABLES = ("a", "b")
def f(conn, name, value):
    conn.execute(sa.text("SELECT * FROM t WHERE a = :v"), {"v": value})
    for table in TABLES:
        conn.execute(sa.text(f"DELETE FROM {table}"))
    cols = ", ".join(quote_identifier(c) for c in name)
    conn.execute(f"SELECT {cols} FROM {TABLES[0]}")
    run_sql(conn, f"DELETE FROM {TABLES[1]}")
''', encoding="utf-8")
    found = scan(tmp_path)
    assert {o.path for o in found} == {"bad.py"} and len(found) == 6, found
    assert any(o.function == "g" and "run_sql" in o.code for o in found)


@pytest.mark.parametrize("name", ["x; DROP TABLE y", '"a"', "a b", "a.b", "", "1abc", "a--", "é", "a" * 64, "a\n", None, 3])
def test_identifiers_that_are_not_plain_are_refused(name):
    from tthc.sqlsafe import UnsafeIdentifier, quote_identifier

    with pytest.raises(UnsafeIdentifier):
        quote_identifier(name)


@pytest.mark.parametrize("where", ["table", "column", "key", "schema"])
@pytest.mark.parametrize("name", ["x; DROP TABLE y", '"a"', "a b", "hs_hoso --", "hs_hoso\n"])
def test_the_agency_registry_refuses_identifiers_that_are_not_plain(where, name, tmp_path):
    from extractors.agency_db import extract
    from extractors.base import ExtractJob, SourceDataError
    from tthc.config import Source, load_settings

    spec = dict(load_settings().source("agency_db_xd_tnmt").spec)
    spec["columns"] = dict(spec["columns"])
    if where == "table":
        spec["table"] = name
    elif where == "column":
        spec["columns"]["field_code"] = name
    elif where == "key":
        spec["columns"][name] = "linh_vuc"
    else:
        spec["schema"] = name
    period = load_settings().period(PERIOD)
    with pytest.raises(SourceDataError, match="not a plain SQL identifier"):
        extract(Source("agency_db_xd_tnmt", "agency_db", spec), period, tmp_path, ExtractJob("r1"))


@pytest.mark.parametrize("source_id", ["../x", "a/b", "A", "x y", "/etc", "", "portal\n", "..", 7])
def test_source_ids_that_would_name_other_folders_are_refused(source_id, tmp_path):
    from tthc.config import ConfigError, Settings

    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump({"sources": [{"id": source_id, "kind": "spreadsheet"}]}), encoding="utf-8")
    settings = Settings(REPO / "config" / "province.yaml", path)
    with pytest.raises(ConfigError, match=r"sources\.yaml: sources\[0\]\.id"):
        _ = settings.sources


@pytest.mark.parametrize("label", ["2024-Q2\n", "../2024-Q2", "2024-Q2/..", "2024-Q5", "2024-q2 ", "x"])
def test_period_labels_that_are_not_quarters_are_refused(label):
    from tthc.config import load_settings

    with pytest.raises(ValueError, match="expected a quarter label"):
        load_settings().period(label)


@pytest.mark.parametrize("name", ["../x", "../../etc/cron.d/x", "/tmp/x", "..", ".", "", "a/../../x", "x\0y"])
def test_names_from_sources_cannot_write_outside_their_folder(name, tmp_path):
    from extractors.base import inside
    from extractors.quarantine import quarantine_rejected

    root = tmp_path / "quarantine"
    root.mkdir()
    with pytest.raises(ValueError, match="plain file name|resolves outside"):
        inside(root, name)
    with pytest.raises(ValueError):
        quarantine_rejected(root, name, [{"reason": "r", "MaHoSo": "1"}])
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["quarantine"]


@pytest.mark.parametrize("run_id", ["..", ".", "../../../x", "manual__2024/../..", "a\nb"])
def test_run_ids_cannot_name_a_folder_outside_the_runs(run_id, var):
    from runner.pipeline import make_context

    ctx = make_context("2024-Q2", run_id=run_id)
    runs = (var / "runs" / "2024-Q2").resolve()
    assert ctx.run_dir.resolve().parent == runs


def test_hostile_workbook_names_stay_in_quarantine(var, tmp_path, monkeypatch):
    """File names are the one thing a commune fully controls: odd ones are read or refused in
    place, and copies of refused ones land inside the quarantine folder."""
    from extractors.registry import extract_source
    from tthc.config import load_settings

    inbox = tmp_path / "inbox" / "2024-Q2"
    inbox.mkdir(parents=True)
    monkeypatch.setenv("TTHC_SOURCE_COMMUNE_SPREADSHEETS_PATH", str(inbox.parent))
    names = ["Bieu06_01279\n.xlsx", "-rf .xlsx", "Bieu06_01279 ..  .csv", "Bieu06_01279\\..\\..\\x.csv"]
    for name in names + ["..xlsx"]:  # a dot file is skipped like Excel's ~$ lock files
        (inbox / name).write_bytes(b"not a workbook")
    outside = tmp_path / "outside.xlsx"
    outside.write_bytes(b"not a workbook either")
    (inbox / "link.xlsx").symlink_to(outside)
    settings = load_settings()
    extract_source(settings.source("commune_spreadsheets"), settings.period("2024-Q2"), var, "t1", settings)
    quarantine = var / "quarantine" / "2024-Q2" / "commune_spreadsheets"
    assert sorted(p.name for p in quarantine.iterdir() if not p.name.endswith(".reason.txt")) == \
        sorted(names + ["link.xlsx"])
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()}
    allowed = (var.resolve(), inbox.resolve())
    assert all(any(p.is_relative_to(a) for a in allowed) or p == outside.resolve() for p in written)
    assert outside.read_bytes() == b"not a workbook either"


def test_text_that_starts_like_a_formula_is_written_as_text_in_every_csv_and_xlsx(tmp_path):
    """A unit name or message from a source that starts with =, +, -, @ must not run as a formula
    when an officer opens the call-back list or a published table in a spreadsheet program."""
    from openpyxl import load_workbook

    from publishing.files import write_table
    from tthc.findings import finding
    from validations.callback import write_callback_list

    evil = '=HYPERLINK("http://attacker.invalid","bấm vào đây")'
    units = pd.DataFrame({"unit_code": ["01279"], "unit_name": ["@SUM(1+1)"], "level": ["commune"]})
    found = [finding("extract.input_warning", evil, unit_code="01279", source_id="commune_spreadsheets",
                     location="-2+3")]
    csv_path, xlsx_path = write_callback_list(found, units, tmp_path)
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "'" + evil.replace('"', '""') in text and "'@SUM(1+1)" in text and "'-2+3" in text
    sheet = load_workbook(xlsx_path).active
    cells = [c for row in sheet.iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith(("=", "@"))]
    assert cells and all(c.data_type == "s" for c in cells)  # strings, not formulas

    write_table(pd.DataFrame({"unit_code": ["01279"], "unit_name": ["+84 giả mạo"], "received_total": [-1]}),
                tmp_path, "units")
    published = (tmp_path / "units.csv").read_text(encoding="utf-8").splitlines()
    assert published[1] == '"01279","\'+84 giả mạo",-1'
    assert pd.read_parquet(tmp_path / "units.parquet")["unit_name"][0] == "+84 giả mạo"  # data itself unchanged
