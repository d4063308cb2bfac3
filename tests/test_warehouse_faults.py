"""Warehouse and working-folder faults an operator really meets, each through `tthc run` (a real
process) against the PostgreSQL server on 127.0.0.1 or a DuckDB file: the documented loader
role runs a whole quarter; the analyst role cannot take or hold the load's lock; a revoked
privilege, an unreachable server, a connection killed mid-load, a corrupt DuckDB file and a
working folder that cannot be written each end in one clear message and a documented exit
status, never a traceback, with the published figures still those of the last good vintage.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REPO
from tests.support.databases import load_runs, throwaway_database

PERIOD = "2024-Q2"
TTHC = Path(sys.executable).parent / "tthc"


def new_var(tmp_path: Path, sample: Path, name: str = "var") -> Path:
    var = tmp_path / name
    var.mkdir()
    (var / "sample").symlink_to(sample, target_is_directory=True)
    return var


def tthc(var: Path, *args: str, url: str | None = None, period: str = PERIOD, timeout: float = 600,
         **env) -> subprocess.CompletedProcess:
    """`tthc run --sample` on the session's small sample (seed 5, scale 0.02), as an operator types it."""
    environment = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false", **env}
    environment.pop("TTHC_WAREHOUSE_URL", None)
    if url:
        environment["TTHC_WAREHOUSE_URL"] = url
    return subprocess.run([str(TTHC), "run", "--period", period, "--sample", "--seed", "5", "--scale", "0.02", *args],
                          env=environment, capture_output=True, text=True, timeout=timeout)


def as_login(url: str, login: str) -> str:
    return url.replace("postgres@", f"{login}@", 1)


def published(url: str) -> dict:
    """What consumers see: the newest vintage's unit rows and every vintage of the period, read as the admin."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return {
                "units": conn.execute(sa.text(
                    "SELECT unit_code, vintage, quality_status, received_total, resolved_total, pending_total "
                    "FROM publish.bieu06_by_unit ORDER BY unit_code, period_start")).all(),
                "vintages": conn.execute(sa.text(
                    "SELECT period_start, vintage, content_sha256 FROM publish.vintages ORDER BY 1, 2")).all(),
                "province": conn.execute(sa.text(
                    "SELECT * FROM publish.bieu06_by_province ORDER BY period_start")).all(),
            }
    finally:
        engine.dispose()


def admin(url: str, *statements: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def published_folders(var: Path) -> list[str]:
    root = var / "publish"
    return sorted(p.relative_to(root).as_posix() for p in root.glob("*/*")) if root.exists() else []


# ---------------------------------------------------------------- the documented roles

def downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from warehouse.db import MIGRATIONS, engine_for

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine_for(url) as engine, engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


@pytest.fixture(scope="module")
def roles_warehouse(small_sample, tmp_path_factory):
    """A warehouse whose roles the admin made with `tthc warehouse-roles`, two loader logins and an
    analyst login (names unique to this test: roles belong to the whole server), and the
    quarter's first run made by the first loader login."""
    suffix = uuid.uuid4().hex[:8]
    roles = {"loader": f"loader_{suffix}", "analyst": f"analyst_{suffix}", "etl": f"etl_{suffix}",
             "etl2": f"etl2_{suffix}", "reader": f"reader_{suffix}"}
    with throwaway_database("postgresql", "tthc_roles") as url:
        try:
            made = subprocess.run([str(TTHC), "warehouse-roles", "--warehouse", url, "--loader", roles["loader"],
                                   "--analyst", roles["analyst"]], capture_output=True, text=True, timeout=300,
                                  env={**os.environ, "GX_ANALYTICS_ENABLED": "false"})
            assert made.returncode == 0, made.stderr[-3000:]
            admin(url, f'CREATE ROLE "{roles["etl"]}" LOGIN IN ROLE "{roles["loader"]}"',
                  f'CREATE ROLE "{roles["etl2"]}" LOGIN IN ROLE "{roles["loader"]}"',
                  f'CREATE ROLE "{roles["reader"]}" LOGIN IN ROLE "{roles["analyst"]}"')
            # the newest migration undone, so that the login's own run applies it, as with a new release
            downgrade(as_login(url, roles["etl"]), "0004")
            var = new_var(tmp_path_factory.mktemp("roles"), small_sample)
            first = tthc(var, url=as_login(url, roles["etl"]))
            yield {"url": url, "roles": roles, "var": var, "first": first}
        finally:
            admin(url, *[f'DROP ROLE IF EXISTS "{roles[r]}"' for r in ("etl", "etl2", "reader")],
                  *[f'DROP OWNED BY "{roles[r]}"' for r in ("loader", "analyst")],
                  *[f'DROP ROLE IF EXISTS "{roles[r]}"' for r in ("loader", "analyst")])


@pytest.mark.xdist_group("warehouse_roles")
def test_a_login_granted_the_loader_role_runs_whole_quarters(roles_warehouse):
    url, roles, var, first = (roles_warehouse[k] for k in ("url", "roles", "var", "first"))
    assert first.returncode == 0, first.stderr[-3000:]
    no_traceback(first)
    assert "vintage 1 (new vintage)" in first.stdout
    from warehouse.db import current_revision, head_revision

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    assert current_revision(engine) == head_revision()  # the login's run migrated the warehouse
    engine.dispose()
    state = published(url)
    assert state["vintages"] and {v.vintage for v in state["vintages"]} == {1} and state["units"]
    # another login of the same role reruns the quarter: it replaces the partition the first one made
    again = tthc(var, url=as_login(url, roles["etl2"]))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "vintage 1 (unchanged, same vintage)" in again.stdout
    assert published(url) == state
    assert len(load_runs(url)) == 2
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # everything the loads made belongs to the role, not to a login
        owners = set(conn.execute(sa.text(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('staging', 'core', 'quality', 'publish') AND c.relkind IN ('r', 'p', 'v')")).scalars())
    engine.dispose()
    assert owners == {roles["loader"]}


@pytest.mark.xdist_group("warehouse_roles")
def test_the_analyst_can_neither_take_nor_hold_the_loads_lock(roles_warehouse):
    from runner import pipeline
    from warehouse.db import engine_for, warehouse_lock

    url, roles, var = (roles_warehouse[k] for k in ("url", "roles", "var"))
    analyst = sa.create_engine(as_login(url, roles["reader"]), poolclass=sa.pool.NullPool)
    with analyst.connect() as conn:  # the lock is a row only the loader may UPDATE
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("SELECT * FROM core.period_locks FOR UPDATE"))
    # what an analyst can take: every advisory lock (the key the load used before included), and a
    # transaction open on the published views
    old_key = int.from_bytes(hashlib.sha256(f"tthc:period:{PERIOD}".encode()).digest()[:8], "big", signed=True)
    with analyst.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": old_key})
        conn.execute(sa.text("SELECT count(*) FROM publish.bieu06_by_unit")).scalar()
        conn.execute(sa.text("SELECT count(*) FROM publish.vintages")).scalar()
        started = time.monotonic()
        loader_url = as_login(url, roles["etl"])
        with engine_for(loader_url) as engine, warehouse_lock(engine, PERIOD, "test"):
            pass
        # a whole load and publication of the quarter while the analyst holds all that
        run_id = next(p.name for p in (var / "runs" / PERIOD).iterdir())
        previous = os.environ.get("TTHC_VAR_DIR")
        os.environ["TTHC_VAR_DIR"] = str(var)
        try:
            ctx = pipeline.make_context(PERIOD, run_id=run_id, warehouse_url=loader_url)
            pipeline.load(ctx)
            result = pipeline.publish(ctx)
        finally:
            if previous is None:
                os.environ.pop("TTHC_VAR_DIR")
            else:
                os.environ["TTHC_VAR_DIR"] = previous
        elapsed = time.monotonic() - started
        conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
    analyst.dispose()
    assert result["vintage"] == 1 and elapsed < 120


# ---------------------------------------------------------------- a privilege missing

@pytest.mark.xdist_group("warehouse_roles")
def test_a_revoked_privilege_stops_the_run_before_extraction_naming_it(roles_warehouse, tmp_path):
    url, roles, var = (roles_warehouse[k] for k in ("url", "roles", "var"))
    before, loaded = published(url), load_runs(url)
    admin(url, f'REVOKE INSERT ON publish.vintages FROM "{roles["loader"]}"')
    try:
        started = time.monotonic()
        result = tthc(var, url=as_login(url, roles["etl"]))
        elapsed = time.monotonic() - started
    finally:
        admin(url, f'GRANT INSERT ON publish.vintages TO "{roles["loader"]}"')
    assert result.returncode == 6, result.stderr[-3000:]
    no_traceback(result)
    assert f"role {roles['loader']} (login {roles['etl']}) lacks INSERT on publish.vintages" in result.stderr
    assert "nothing was extracted, loaded or published" in result.stderr
    assert published(url) == before and load_runs(url) == loaded  # nothing loaded: core and publish agree
    print(f"refused after {elapsed:.1f} s")


@pytest.mark.xdist_group("warehouse_roles")
def test_a_privilege_revoked_between_load_and_publish_leaves_the_published_vintage(roles_warehouse, small_sample,
                                                                                    tmp_path):
    """The check before extraction cannot see a grant revoked while the run loads: then the
    publication fails naming the privilege, and consumers still see the last vintage (the publish
    views read only each vintage's own tables)."""
    from runner import pipeline
    from runner.local_sources import sample_connections
    from warehouse.db import WarehouseUnavailable

    url, roles = roles_warehouse["url"], roles_warehouse["roles"]
    var = new_var(tmp_path, small_sample)
    before = published(url)
    loader_url = as_login(url, roles["etl"])
    previous = os.environ.get("TTHC_VAR_DIR")
    os.environ["TTHC_VAR_DIR"] = str(var)
    try:
        with sample_connections(small_sample):
            ctx = pipeline.make_context("2024-Q3", run_id="revoked", warehouse_url=loader_url)
            for source_id in pipeline.source_ids(ctx.settings):
                pipeline.extract(ctx, source_id)
            for stage in pipeline.STAGES[:-1]:
                stage(ctx)
        admin(url, f'REVOKE INSERT ON publish.vintages FROM "{roles["loader"]}"')
        with pytest.raises(WarehouseUnavailable) as refused:
            pipeline.publish(ctx)
    finally:
        admin(url, f'GRANT INSERT ON publish.vintages TO "{roles["loader"]}"')
        if previous is None:
            os.environ.pop("TTHC_VAR_DIR")
        else:
            os.environ["TTHC_VAR_DIR"] = previous
    message = str(refused.value)
    assert "permission denied for table vintages" in message and "refused the publish of 2024-Q3" in message
    assert "the published vintages are unchanged" in message
    assert published(url) == before  # 2024-Q3 not published; 2024-Q2's vintage as it was
    assert published_folders(var) == []


# ---------------------------------------------------------------- PostgreSQL unreachable, or killed mid-load

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_warehouse_is_named_before_anything_is_extracted(small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    port = closed_port()
    started = time.monotonic()
    result = tthc(var, url=f"postgresql://tthc:s3cret-pw@127.0.0.1:{port}/tthc_warehouse")
    elapsed = time.monotonic() - started
    assert result.returncode == 6, result.stderr[-3000:]
    no_traceback(result)
    assert f"the warehouse 127.0.0.1:{port}/tthc_warehouse (postgresql" in result.stderr
    assert "cannot be reached or refused the login" in result.stderr and "Connection refused" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout and "tthc:***@" in result.stderr
    assert not (var / "landing").exists() and not (var / "publish").exists()
    assert elapsed < 20, elapsed  # the whole CLI, imports included; extraction alone took ~25 s
    print(f"refused after {elapsed:.1f} s")


def test_the_dags_first_task_refuses_an_unreachable_warehouse_before_any_extract_task(tmp_path, monkeypatch):
    """In Airflow the `sources` task runs the same checks as `tthc run` before mapping the extracts."""
    from runner import pipeline
    from warehouse.db import WarehouseUnavailable

    monkeypatch.setenv("TTHC_VAR_DIR", str(tmp_path / "var"))
    ctx = pipeline.make_context(PERIOD, warehouse_url=f"postgresql://tthc:pw@127.0.0.1:{closed_port()}/tthc_warehouse")
    with pytest.raises(WarehouseUnavailable, match="cannot be reached"):
        pipeline.sources_to_extract(ctx)
    assert not (tmp_path / "var" / "landing").exists()
    ctx = pipeline.make_context(PERIOD, warehouse_url=f"duckdb:///{tmp_path / 'var' / 'warehouse.duckdb'}")
    assert pipeline.sources_to_extract(ctx) == pipeline.source_ids()


# `tthc run` (runner.cli.main) with a pause inside the load's swap transaction
PAUSED_CLI = r"""
import os, sys, time
import warehouse.load as load
original, calls = load._columns, []
def columns(conn, table):
    calls.append(table)
    if len(calls) == 3:
        print("PAUSED", flush=True)
        deadline = time.time() + 300
        while time.time() < deadline and not os.path.exists(os.environ["FAULT_GO_FILE"]):
            time.sleep(0.05)
    return original(conn, table)
load._columns = columns
from runner.cli import main
code = main(sys.argv[1:])
sys.stdout.flush(); sys.stderr.flush()
os._exit(code)
"""


def test_a_load_whose_connection_is_killed_says_why_and_keeps_the_last_vintage(small_sample, tmp_path):
    with throwaway_database("postgresql", "tthc_killed") as url:
        var = new_var(tmp_path, small_sample)
        good = tthc(var, url=url)
        assert good.returncode == 0, good.stderr[-3000:]
        before, loaded = published(url), load_runs(url)
        go = tmp_path / "go"
        env = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false", "TTHC_WAREHOUSE_URL": url,
               "FAULT_GO_FILE": str(go), "PYTHONPATH": str(REPO)}
        child = subprocess.Popen([sys.executable, "-c", PAUSED_CLI, "run", "--period", PERIOD, "--sample", "--seed",
                                  "5", "--scale", "0.02", "--reason", "killed"], cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err: list[str] = []
        reader = threading.Thread(target=lambda: err.extend(child.stderr), daemon=True)
        reader.start()
        try:
            for line in child.stdout:
                if line.strip() == "PAUSED":
                    break
            else:
                pytest.fail("the run did not reach the load: " + "".join(err)[-3000:])
            database = sa.make_url(url).database
            admin(url.rsplit("/", 1)[0] + "/postgres",  # every server connection of the run: the load's and the lock's
                  f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'")
            go.touch()
            child.wait(timeout=300)
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                child.wait()
            reader.join(timeout=10)
        stderr = "".join(err)
        assert child.returncode == 6, stderr[-3000:]
        assert "Traceback" not in stderr
        assert "terminating connection due to administrator command" in stderr, stderr[-3000:]
        assert f"the connection to the warehouse 127.0.0.1:5432/{database} (postgresql" in stderr
        assert f"was lost during the load of {PERIOD}" in stderr and "the published vintages are unchanged" in stderr
        assert published(url) == before and load_runs(url) == loaded
        print(stderr.strip().splitlines()[-1])


# ---------------------------------------------------------------- a corrupt DuckDB file, var/ not writable

def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["random bytes", "truncated"])
def test_a_corrupt_duckdb_warehouse_is_named_and_left_as_it_was(small_sample, tmp_path, damage):
    from warehouse.db import engine_for, migrate

    var = new_var(tmp_path, small_sample)
    path = var / "warehouse.duckdb"
    if damage == "random bytes":
        path.write_bytes(os.urandom(1 << 20))
    else:
        with engine_for(f"duckdb:///{path}") as engine:
            migrate(engine)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    digest = sha256(path)
    result = tthc(var)
    assert result.returncode == 6, result.stderr[-3000:]
    no_traceback(result)
    assert f"the warehouse file {path} cannot be opened as a DuckDB database" in result.stderr
    assert "Move it aside" in result.stderr
    assert sha256(path) == digest
    # nothing else written: the run's and the writers' lock files only, empty once released
    assert sorted(p.name for p in var.iterdir()) == ["locks", "sample", "warehouse.duckdb", "warehouse.duckdb.lock"]
    assert (var / "warehouse.duckdb.lock").stat().st_size == 0 and not (var / "warehouse.duckdb.wal").exists()
    print(result.stderr.strip().splitlines()[-1])


def test_a_working_folder_that_is_a_file_is_named(tmp_path):
    target = tmp_path / "var"
    target.write_text("not a folder\n")
    result = tthc(target)
    assert result.returncode == 7, result.stderr[-3000:]
    no_traceback(result)
    assert f"the working folder {target} (TTHC_VAR_DIR) cannot be written: it is a file, not a folder" in result.stderr
    assert target.read_text() == "not a folder\n"


@contextmanager
def read_only(folder: Path):
    """`folder` bound read-only onto itself in a mount namespace of its own (root ignores chmod);
    yields the command prefix that runs a program inside it."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed for a read-only mount")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode()[-200:]}")
    script = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    yield ["unshare", "-m", "sh", "-c", script, str(folder)]


def test_a_read_only_working_folder_is_named_and_nothing_is_written(small_sample, tmp_path):
    var = new_var(tmp_path, small_sample)
    with read_only(var) as prefix:
        environment = {**os.environ, "TTHC_VAR_DIR": str(var), "GX_ANALYTICS_ENABLED": "false"}
        environment.pop("TTHC_WAREHOUSE_URL", None)
        result = subprocess.run([*prefix, str(TTHC), "run", "--period", PERIOD, "--sample", "--seed", "5",
                                 "--scale", "0.02"], env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 7, result.stderr[-3000:]
    no_traceback(result)
    assert f"the working folder {var} (TTHC_VAR_DIR) cannot be written: Read-only file system" in result.stderr
    assert sorted(p.name for p in var.iterdir()) == ["sample"]
