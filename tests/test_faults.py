"""Faults injected into real processes and real servers on 127.0.0.1: a run killed with SIGKILL
in extraction, load and publish; a source down for a whole run; an API failing a fifth of its
requests; two runs of one period at once; a landing disk full or not writable.

Whatever happens, a rerun ends with the same warehouse and the same published files as a run
that was never interrupted. Published files are compared by sha256, except the Biểu 06
workbook, whose `docProps/core.xml` carries created/modified times (openpyxl stamps the save
time) and whose zip entries carry their own: it is compared member by member with those two
fields blanked. Warehouse tables are compared by content without `run_id` and
`publish.vintages.published_at`; `core.runs` (one row per load) is compared where it matters.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from tests.conftest import REPO
from tests.support.databases import load_runs, throwaway_database
from runner.local_sources import environment as env

PERIOD = "2024-Q2"
PORTAL_UNITS_LEVELS = ("department", "district")  # units the portal covers completely before the reform


# ---------------------------------------------------------------- helpers: runs and snapshots

def duckdb_url(var: Path) -> str:
    return f"duckdb:///{var / 'warehouse.duckdb'}"


def new_var(tmp_path: Path, sample: Path, name: str = "var") -> Path:
    """An empty var/ whose sample/ is the session's small sample (so `--sample` generates nothing)."""
    var = tmp_path / name
    var.mkdir()
    (var / "sample").symlink_to(sample, target_is_directory=True)
    return var


def run_in_process(var: Path, sample: Path, run_id: str, url: str | None = None, settings=None) -> dict:
    from runner import pipeline
    from runner.local_sources import sample_connections

    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(sample):
        ctx = pipeline.make_context(PERIOD, run_id=run_id, warehouse_url=url or duckdb_url(var), settings=settings)
        return pipeline.run(ctx)


# The child: a whole run (pipeline.run, what `tthc run --sample` calls) with a pause hook that
# prints PAUSED and waits, so that the parent can kill it exactly there.
CHILD = r"""
import json, os, sys, time
from pathlib import Path
hook, url, run_id, sample = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
go = os.environ.get("FAULT_GO_FILE")

def pause():
    print("PAUSED", flush=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (go and os.path.exists(go)):
        time.sleep(0.05)

def after(module, name, when=lambda n: n == 1):
    original, calls = getattr(module, name), []
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if when(len(calls)):
            pause()
        return result
    setattr(module, name, wrapper)

if hook == "extract":          # the portal's second batch is in the staging folder, not yet landed
    import extractors.base as base
    after(base.ParquetLanding, "write_batch", lambda n: n == 2)
elif hook == "load":           # inside the swap transaction, two core tables already replaced
    import warehouse.load as load
    original_columns, calls = load._columns, []
    def columns(conn, table):
        calls.append(table)
        if len(calls) == 3:
            pause()
        return original_columns(conn, table)
    load._columns = columns
elif hook == "publish-db":     # the vintage's rows inserted, the transaction not committed
    import warehouse.publish as publish
    after(publish, "_freeze_rollup_and_indicators")
elif hook == "publish-files":  # the vintage committed, its files written to the staging folder, not renamed
    import publishing.report as report
    after(report, "write_report")
elif hook == "load-stage-only":  # load and publish of a prepared run dir (an Airflow worker), pausing in load
    pass
elif hook != "none":
    raise SystemExit(f"unknown hook {hook}")

from runner import pipeline
if hook == "load-stage-only":
    import warehouse.load as load
    original_columns, calls = load._columns, []
    def columns(conn, table):
        calls.append(table)
        if len(calls) == 3 and go:
            pause()
        return original_columns(conn, table)
    load._columns = columns
    ctx = pipeline.make_context(os.environ["FAULT_PERIOD"], run_id=run_id, warehouse_url=url)
    print(json.dumps({"load": pipeline.load(ctx), "publish": pipeline.publish(ctx)}), flush=True)
else:
    from runner.local_sources import sample_connections
    with sample_connections(sample):
        ctx = pipeline.make_context(os.environ["FAULT_PERIOD"], run_id=run_id, warehouse_url=url)
        pipeline.run(ctx)
    print("DONE", flush=True)
sys.stdout.flush()
os._exit(0)
"""


def start_child(var: Path, sample: Path, hook: str, url: str, run_id: str, **extra_env) -> subprocess.Popen:
    child_env = {**os.environ, "TTHC_VAR_DIR": str(var), "FAULT_PERIOD": PERIOD, "GX_ANALYTICS_ENABLED": "false",
                 "PYTHONPATH": str(REPO), **extra_env}
    child_env.pop("TTHC_WAREHOUSE_URL", None)
    return subprocess.Popen([sys.executable, "-c", CHILD, hook, url, run_id, str(sample)], cwd=REPO, env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when_paused(child: subprocess.Popen) -> None:
    try:
        line = child.stdout.readline()
        assert line.strip() == "PAUSED", f"the child did not reach the pause point: {line!r}\n{child.stderr.read()[-3000:]}"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def xlsx_digest(path: Path) -> str:
    """sha256 of the workbook's members, with the save times of docProps/core.xml blanked."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            data = z.read(name)
            if name == "docProps/core.xml":
                data = re.sub(rb"<dcterms:(created|modified)([^>]*)>[^<]*</dcterms:\1>", rb"<dcterms:\1\2/>", data)
            digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return "members:" + digest.hexdigest()


def published_files(var: Path) -> dict[str, str]:
    """Every file under publish/, by path: sha256 (the workbook: see xlsx_digest). Staging
    folders left behind would show up here too."""
    root = var / "publish"
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        out[rel] = xlsx_digest(path) if path.suffix == ".xlsx" else hashlib.sha256(path.read_bytes()).hexdigest()
    return out


EXCLUDED_COLUMNS = {"run_id", "published_at"}
EXCLUDED_TABLES = {"core.runs"}


def warehouse_tables(url: str) -> dict[str, list[tuple]]:
    """Every table and view of core, quality and publish, as sorted rows without run ids and times."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            names = conn.execute(sa.text(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE table_schema IN ('core', 'quality', 'publish') ORDER BY 1")).scalars().all()
            out = {}
            for name in names:
                if name in EXCLUDED_TABLES:
                    continue
                frame = pd.read_sql(sa.text(f"SELECT * FROM {name}"), conn)
                frame = frame.drop(columns=[c for c in frame.columns if c in EXCLUDED_COLUMNS])
                out[name] = sorted(tuple("∅" if pd.isna(v) else str(v) for v in row)
                                   for row in frame.itertuples(index=False))
            return out
    finally:
        engine.dispose()


def assert_same_state(var: Path, url: str, reference: dict) -> None:
    files = published_files(var)
    assert files == reference["files"], {k: (files.get(k), reference["files"].get(k))
                                         for k in set(files) | set(reference["files"])
                                         if files.get(k) != reference["files"].get(k)}
    tables = warehouse_tables(url)
    assert tables.keys() == reference["tables"].keys()
    differ = [t for t in tables if tables[t] != reference["tables"][t]]
    assert not differ, f"tables that differ from an uninterrupted run: {differ}"


def no_leftovers(var: Path) -> list[str]:
    """Staging/old folders and temporary files left anywhere under landing/ and publish/."""
    found = []
    for area in ("landing", "publish"):
        for path in (var / area).rglob("*") if (var / area).exists() else []:
            if path.name.startswith((".staging-", ".old-")) or path.name.endswith(".tmp"):
                found.append(str(path.relative_to(var)))
    return found


@pytest.fixture(scope="module")
def reference(small_sample, tmp_path_factory):
    """An uninterrupted run on DuckDB: its published files and warehouse tables."""
    var = new_var(tmp_path_factory.mktemp("reference"), small_sample)
    summary = run_in_process(var, small_sample, "reference")
    assert summary["published"]["vintage"] == 1
    return {"var": var, "files": published_files(var), "tables": warehouse_tables(duckdb_url(var))}


# ---------------------------------------------------------------- 1. SIGKILL, then rerun

@pytest.mark.xdist_group("faults_reference")
@pytest.mark.parametrize("hook", ["extract", "load", "publish-db", "publish-files"])
def test_a_run_killed_with_sigkill_then_rerun_equals_an_uninterrupted_run(hook, reference, small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    url = duckdb_url(var)
    kill_when_paused(start_child(var, small_sample, hook, url, "killed"))
    if hook == "extract":
        assert any(p.name.startswith(".staging-") for p in (var / "landing" / PERIOD).iterdir())
        assert not (var / "landing" / PERIOD / "portal_dvc" / "manifest.json").exists()
    if hook == "publish-files":  # the vintage is committed, its folder not yet in place
        assert not (var / "publish" / PERIOD / "v1").exists()
        assert any(p.name.startswith(".staging-v1-") for p in (var / "publish" / PERIOD).iterdir())
    summary = run_in_process(var, small_sample, "rerun")
    assert summary["published"]["vintage"] == 1
    assert_same_state(var, url, reference)
    assert no_leftovers(var) == []
    expected_loads = ["killed", "rerun"] if hook.startswith("publish") else ["rerun"]
    assert load_runs(url) == expected_loads  # a killed load leaves no trace; a killed publish keeps its (committed) load


@pytest.fixture
def postgres_url():
    """Fresh PostgreSQL databases on 127.0.0.1 (one per call), dropped afterwards."""
    with ExitStack() as databases:
        yield lambda: databases.enter_context(throwaway_database("postgresql", "tthc_faults"))


@pytest.mark.xdist_group("faults_postgres")
def test_a_load_killed_with_sigkill_on_postgresql_then_rerun_equals_an_uninterrupted_run(postgres_url, small_sample,
                                                                                          tmp_path):
    reference_url, url = postgres_url(), postgres_url()
    reference_var = new_var(tmp_path, small_sample, "reference")
    run_in_process(reference_var, small_sample, "reference", reference_url)
    reference = {"files": published_files(reference_var), "tables": warehouse_tables(reference_url)}

    var = new_var(tmp_path, small_sample)
    kill_when_paused(start_child(var, small_sample, "load", url, "killed"))
    run_in_process(var, small_sample, "rerun", url)
    assert_same_state(var, url, reference)
    assert load_runs(url) == ["rerun"]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # the killed load's staged partition was dropped by the rerun
        staged = conn.execute(sa.text("SELECT count(*) FROM information_schema.tables "
                                      "WHERE table_schema = 'staging' AND table_name LIKE 'fact_dossier_p%'")).scalar()
        # the killed load's period lock went with its connection: the row is free to lock at once
        locked = conn.execute(sa.text("SELECT period_label FROM core.period_locks FOR UPDATE NOWAIT")).scalars().all()
    engine.dispose()
    assert staged == 0 and locked == [PERIOD]


# ---------------------------------------------------------------- 2. a source down for a whole run

def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.xdist_group("faults_reference")
def test_the_portal_down_for_a_whole_run_withholds_its_units_and_the_next_run_picks_them_up(reference, small_sample,
                                                                                            tmp_path):
    """Complements test_stages_bad_input's agency DB down: here the portal API, which covers 20
    departments and districts (the other 7 departments have their own software); a commune it
    covers partly still has its own workbook."""
    from tthc.config import load_settings

    var = new_var(tmp_path, small_sample)
    url = duckdb_url(var)
    settings = load_settings()
    settings.source("portal_dvc").spec["retries"] = {"attempts": 2, "backoff_seconds": 0.05, "backoff_max_seconds": 0.1,
                                                     "jitter_seconds": 0, "budget_seconds": 5}
    settings.source("portal_dvc").spec["timeout_seconds"] = 2
    down = json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": closed_port(), "password": "x"})
    from runner import pipeline
    from runner.local_sources import sample_connections

    with env(TTHC_VAR_DIR=str(var), TTHC_WAREHOUSE_URL=None), sample_connections(small_sample):
        with env(AIRFLOW_CONN_TTHC_PORTAL_DVC=down):
            first = pipeline.run(pipeline.make_context(PERIOD, run_id="portal-down", warehouse_url=url,
                                                       settings=settings))
    assert first["published"]["vintage"] == 1
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        portal, period = settings.source("portal_dvc"), settings.period(PERIOD)
        covered = {u for u, level in con.sql(
            "SELECT unit_code, unit_level FROM core.unit_period_status WHERE unit_level IN ('department', 'district')"
        ).fetchall() if portal.coverage(u, level, period)}
        status = dict(con.sql("SELECT unit_code, quality_status FROM core.unit_period_status").fetchall())
        published = dict(con.sql("SELECT unit_code, quality_status FROM publish.bieu06_by_unit").fetchall())
        portal_rows = con.sql("SELECT count(*) FROM publish.bieu06_by_unit WHERE source_id = 'portal_dvc'").fetchall()[0][0]
        finding = con.sql("SELECT message FROM quality.findings WHERE check_id = 'extract.source_missing'").fetchall()
    assert len(covered) == 20
    assert {status[u] for u in covered} == {"missing"}
    assert not covered & published.keys()  # nothing published for them, neither complete nor partial
    assert portal_rows == 0
    assert len(finding) == 1 and "portal_dvc" in finding[0][0] and "ConnectionError" in finding[0][0]
    assert "000.00.07.H04" in published and published["000.00.07.H04"] == "ok"  # the other sources still count
    failed = json.loads((var / "landing" / PERIOD / "portal_dvc" / "failed.json").read_text())
    assert failed["status"] == "failed" and "127.0.0.1" in failed["failure"]

    second = run_in_process(var, small_sample, "portal-back", settings=settings)  # the source is back
    assert second["published"]["vintage"] == 2 and second["published"]["new_vintage"]
    assert "portal_dvc" in second["published"]["reason"]
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        status = dict(con.sql("SELECT unit_code, quality_status FROM core.unit_period_status").fetchall())
        published = dict(con.sql("SELECT unit_code, quality_status FROM publish.bieu06_by_unit").fetchall())
    assert {status[u] for u in covered} <= {"ok", "warning"} and covered <= published.keys()
    assert not (var / "landing" / PERIOD / "portal_dvc" / "failed.json").exists()
    # the second run's figures are exactly those of a run that never saw the source down
    now, then = warehouse_tables(url), reference["tables"]
    for table in ("core.unit_period_status", "core.bieu06_reconciled", "core.fact_dossier", "publish.bieu06_by_unit"):
        strip = (lambda rows: rows) if "vintage" not in _columns(url, table) else _without_vintage(url, table)
        assert strip(now[table]) == strip(then[table]), table


def _columns(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            schema, name = table.split(".")
            return conn.execute(sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema = :s "
                                        "AND table_name = :t ORDER BY ordinal_position"), {"s": schema, "t": name}
                                ).scalars().all()
    finally:
        engine.dispose()


def _without_vintage(url: str, table: str):
    position = [c for c in _columns(url, table) if c not in EXCLUDED_COLUMNS].index("vintage")
    return lambda rows: sorted(r[:position] + r[position + 1:] for r in rows)


# ---------------------------------------------------------------- 3. an API failing a fifth of its requests

@pytest.mark.xdist_group("faults_light")
@pytest.mark.parametrize("style", ["page", "cursor"])
def test_an_api_failing_a_fifth_of_requests_lands_every_dossier_once(small_sample, tmp_path, style):
    from extractors.registry import extract_source
    from tthc.config import load_settings
    from simulator.server import serve

    settings = load_settings()
    source, period = settings.source("portal_dvc"), settings.period(PERIOD)
    source.spec.update(pagination=style, page_size=150, timeout_seconds=5,
                       retries={"attempts": 6, "backoff_seconds": 0.01, "backoff_max_seconds": 0.05,
                                "jitter_seconds": 0.01, "budget_seconds": 60})
    server = serve(small_sample, "fault-token")
    rng = random.Random(2024)
    # in every 20 requests, in shuffled order: 4 answered 500/502/503/504 (20 %), one 429 with
    # Retry-After 0 or 1 s, 15 normal answers
    queue = []
    for _ in range(100):
        block = [{"status": rng.choice((500, 502, 503, 504))} for _ in range(4)]
        block += [{"status": 429, "retry_after": rng.choice((0, 1))}] + [None] * 15
        rng.shuffle(block)
        queue += block
    server.faults["queue"] = list(queue)
    try:
        with env(TTHC_VAR_DIR=str(tmp_path), AIRFLOW_CONN_TTHC_PORTAL_DVC=json.dumps(
                {"conn_type": "http", "host": "127.0.0.1", "port": server.port, "password": "fault-token",
                 "extra": {"auth_type": "bearer"}})):
            manifest_path = extract_source(source, period, tmp_path, "faults", settings, full=True)
        requests = server.api_requests
    finally:
        server.shutdown()
    served = queue[:requests]
    errors = sum(1 for f in served if f and f["status"] >= 500)
    throttled = sum(1 for f in served if f and f["status"] == 429)
    manifest = json.loads(manifest_path.read_text())
    landed = pq.read_table(manifest_path.parent / manifest["files"][0]["path"]).column("MaHoSo").to_pylist()

    portal = pq.read_table(small_sample / "portal" / "dossiers.parquet").to_pandas()
    received = pd.to_datetime(portal["NgayTiepNhan"], format="%Y%m%d%H%M%S")
    finished = pd.to_datetime(portal["NgayKetThucXuLy"], format="%Y%m%d%H%M%S")
    in_window = (received < pd.Timestamp("2024-07-01")) & (finished.isna() | (finished >= pd.Timestamp("2024-04-01")))
    expected = set(portal.loc[in_window, "MaHoSo"])

    assert len(landed) == len(set(landed)), "a dossier landed twice"
    assert set(landed) == expected and len(expected) > 1000
    pages = -(-len(expected) // 150)
    assert requests - errors - throttled >= pages  # every page answered at least once
    assert errors >= 0.15 * requests and throttled >= 0.03 * requests, (errors, throttled, requests)  # really served


# ---------------------------------------------------------------- 4. two runs of one period at once

@pytest.mark.xdist_group("faults_reference")
def test_two_cli_runs_of_one_period_at_once_one_refuses_and_nothing_is_loaded_twice(reference, small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    child_env = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false"}
    child_env.pop("TTHC_WAREHOUSE_URL", None)
    command = [sys.executable, "-m", "runner.cli", "run", "--period", PERIOD, "--sample", "--seed", "5",
               "--scale", "0.02"]
    runs = [subprocess.Popen(command, cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, 3], [o[1][-2000:] for o in outputs]
    refused = next(o for r, o in zip(runs, outputs) if r.returncode == 3)
    winner = next(r for r in runs if r.returncode == 0)
    message = re.search(r"refused: another run for 2024-Q2 is in progress \(pid (\d+), since ([^)]+)\)", refused[1])
    assert message, refused[1][-2000:]
    assert int(message.group(1)) == winner.pid
    url = duckdb_url(var)
    assert len(load_runs(url)) == 1
    assert len(list((var / "runs" / PERIOD).iterdir())) == 1  # the refused run left no run folder
    assert_same_state(var, url, reference)


def _stream(pipe, sink: list[str], seen: threading.Event, pattern: str) -> None:
    for line in pipe:
        sink.append(line)
        if pattern in line:
            seen.set()


def _two_workers_load_and_publish_at_once(var: Path, reference_run: Path, url: str) -> tuple[list[str], str]:
    """Airflow-style: load+publish of two run folders of one period in two processes (no run
    lock between them). The first pauses inside its load transaction; the second must wait
    for the warehouse lock, not interleave."""
    for run_id in ("worker-a", "worker-b"):
        shutil.copytree(reference_run, var / "runs" / PERIOD / run_id)
    go = var / "go"
    first = start_child(var, var / "sample", "load-stage-only", url, "worker-a", FAULT_GO_FILE=str(go))
    assert first.stdout.readline().strip() == "PAUSED", first.stderr.read()[-3000:]
    second = start_child(var, var / "sample", "load-stage-only", url, "worker-b")
    err, waiting = [], threading.Event()
    reader = threading.Thread(target=_stream, args=(second.stderr, err, waiting, "wait"), daemon=True)
    reader.start()
    try:
        assert waiting.wait(120), "".join(err)[-3000:]
        time.sleep(0.5)
        assert second.poll() is None  # still waiting while the first holds the lock
    finally:
        go.touch()
        out_first = first.communicate(timeout=300)
        second.stdout.read()
        second.wait(timeout=300)
        reader.join(timeout=10)
    assert first.returncode == 0 and second.returncode == 0, (out_first[1][-2000:], "".join(err)[-2000:])
    return load_runs(url), "".join(err)


@pytest.mark.xdist_group("faults_reference")
def test_two_workers_loading_one_period_at_once_wait_for_each_other_on_duckdb(reference, small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    url = duckdb_url(var)
    order, err = _two_workers_load_and_publish_at_once(var, reference["var"] / "runs" / PERIOD / "reference", url)
    assert order == ["worker-a", "worker-b"]  # one after the other, never interleaved
    assert f"waiting for the DuckDB warehouse {var / 'warehouse.duckdb'}" in err
    assert_same_state(var, url, reference)
    with duckdb.connect(str(var / "warehouse.duckdb"), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM publish.vintages").fetchall()[0][0] == 1
        assert {r[0] for r in con.sql("SELECT DISTINCT run_id FROM core.fact_dossier").fetchall()} == {"worker-b"}


@pytest.mark.xdist_group("faults_postgres")
def test_two_workers_loading_one_period_at_once_wait_for_each_other_on_postgresql(postgres_url, small_sample, tmp_path):
    reference_url = postgres_url()
    reference_var = new_var(tmp_path, small_sample, "reference")
    run_in_process(reference_var, small_sample, "reference", reference_url)
    reference = {"files": published_files(reference_var), "tables": warehouse_tables(reference_url)}
    url = postgres_url()
    var = new_var(tmp_path, small_sample)
    order, err = _two_workers_load_and_publish_at_once(var, reference_var / "runs" / PERIOD / "reference", url)
    assert order == ["worker-a", "worker-b"]
    assert "waits for the warehouse lock held by server process" in err
    assert_same_state(var, url, reference)


# ---------------------------------------------------------------- 5. landing disk full or not writable

DISK_FULL_CHILD = r"""
import json, os, resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG instead of killing us
from extractors.registry import extract_source
from tthc.config import load_settings
from runner.local_sources import sample_connections
settings = load_settings()
with sample_connections(Path(sys.argv[1])):
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
    try:
        extract_source(settings.source("portal_dvc"), settings.period(sys.argv[3]), Path(os.environ["TTHC_VAR_DIR"]),
                       "disk-full", settings, full=True)
        print(json.dumps({"error": None}))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
sys.stdout.flush()
os._exit(0)
"""


def landing_state(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.xdist_group("faults_light")
def test_a_full_landing_disk_fails_naming_the_path_and_keeps_the_previous_landing(small_sample, tmp_path):
    from extractors.registry import extract_source, landed_sources
    from tthc.config import load_settings
    from runner.local_sources import sample_connections

    var = tmp_path / "var"
    settings = load_settings()
    with env(TTHC_VAR_DIR=str(var)), sample_connections(small_sample):
        previous = extract_source(settings.source("portal_dvc"), settings.period(PERIOD), var, "before", settings)
    folder = previous.parent
    before = landing_state(folder)
    landed_bytes = (folder / "dossiers.parquet").stat().st_size
    limit = 16 * 1024
    assert landed_bytes > 2 * limit  # the new landing cannot fit, a failure note can
    child = subprocess.run([sys.executable, "-c", DISK_FULL_CHILD, str(small_sample), str(limit), PERIOD], cwd=REPO,
                           env={**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false"},
                           capture_output=True, text=True, timeout=300)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    assert result["error"] == "LandingWriteError", (result, child.stderr[-2000:])
    assert result["message"].startswith(f"cannot write the landing {folder}: ") and "too large" in result["message"]
    after = landing_state(folder)
    assert {k: v for k, v in after.items() if k != "failed.json"} == before  # the previous landing, byte for byte
    assert [p.name for p in folder.parent.iterdir()] == ["portal_dvc"]  # no staging folder, no half-written file
    failed = json.loads((folder / "failed.json").read_text())  # a whole note, never a half-written one
    assert failed["failure"].startswith("LandingWriteError: cannot write the landing")
    landed, missing = landed_sources(settings, settings.period(PERIOD), var)
    assert "portal_dvc" not in missing  # kept on the previous landing, marked stale
    assert "too large" in {s.source_id: s for s in landed}["portal_dvc"].stale["failure"]


@pytest.mark.xdist_group("faults_light")
def test_a_landing_that_is_not_a_folder_fails_naming_the_path(small_sample, tmp_path, caplog):
    from extractors.base import LandingWriteError
    from extractors.registry import extract_source
    from tthc.config import load_settings
    from runner.local_sources import sample_connections

    var = tmp_path / "var"
    (var / "landing").mkdir(parents=True)
    (var / "landing" / PERIOD).write_text("a file where the period's landing folder should be")
    settings = load_settings()
    with env(TTHC_VAR_DIR=str(var)), sample_connections(small_sample):
        with pytest.raises(LandingWriteError) as raised:
            extract_source(settings.source("portal_dvc"), settings.period(PERIOD), var, "r", settings)
    target = var / "landing" / PERIOD / "portal_dvc"
    assert str(raised.value).startswith(f"cannot write the landing {target}: ")
    assert (var / "landing" / PERIOD).read_text().startswith("a file")  # untouched
    assert "could not record the failure" in caplog.text
