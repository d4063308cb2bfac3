"""The production topology of docker/docker-compose.yml, without containers: Airflow with the
CeleryExecutor on this machine's PostgreSQL (a fresh metadata database) and Redis, a scheduler,
dag-processor, api-server, triggerer and two Celery workers as processes, the warehouse on
PostgreSQL. One quarter is triggered through the REST API, then four quarters are backfilled
with the documented `airflow backfill create` and must run one after another.

Settings that differ from docker/, besides hosts, ports, databases and secrets made for the test:
all users are admin on the loopback api-server; `use_job_schedule=False`, so that unpausing the
DAG does not also start today's quarter (the sample has no data for it); and, since both workers
share one host here, each has its own log-server port and names itself on the task instances it
runs through `hostname_callable` (containers have their own hostnames).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import REPO, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.services, pytest.mark.xdist_group("distributed")]

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_DB = os.environ.get("TTHC_TEST_REDIS_DB")  # default: the first empty DB, claimed (see claim_redis_db)
DAG_ID = "tthc_quarterly"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TRIGGERED = ("2024-01-01", "2024-04-01")  # 2024-Q1: [start, end) of the data interval
# Logical dates are the quarters' starts (2024-Q2 … 2025-Q1). With no offset the CLI reads the dates
# as UTC midnight, which is 07:00 in Vietnam, and silently drops the first quarter.
BACKFILL_FROM, BACKFILL_TO = "2024-04-01T00:00:00+07:00", "2025-01-01T00:00:00+07:00"
QUARTER_STARTS = ["2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01", "2025-01-01"]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg(dbname: str, sql: str, params=(), autocommit: bool = False):
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}", autocommit=autocommit) as con:
        cur = con.execute(sql, params)
        return cur.fetchall() if cur.description else None


class Processes:
    """Every process this module starts, each in its own process group, all stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs, self.started = env, logs, []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen([str(BIN / "airflow"), *args], env={**self.env, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        self.started.append((name, proc, log))
        return proc

    def run(self, name: str, *args: str, timeout: float = 180) -> str:
        out = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout, cwd=REPO)
        (self.logs / f"{name}.log").write_text(out.stdout + out.stderr)
        assert out.returncode == 0, f"airflow {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    def check_alive(self) -> None:
        dead = [(n, p.returncode) for n, p, _ in self.started if p.poll() is not None]
        assert not dead, f"processes exited early: {dead}\n{self.tails()}"

    def tails(self, lines: int = 25) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        """SIGTERM to every group, a grace period, then SIGKILL to whatever is left."""
        for _, proc, _ in self.started:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _, proc, _ in self.started:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, proc, log in self.started:
            _signal_group(proc, signal.SIGKILL)  # children left behind by a leader that exited
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            log.close()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def api(port: int, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def wait_for(what: str, check, procs: Processes, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            result = check()
        except Exception:  # noqa: BLE001 - not ready yet (server starting, DAG not parsed)
            result = None
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{procs.tails()}")


def claim_redis_db(suffix: str):
    """A Redis DB of this run's own: a run of this test elsewhere on the machine (another checkout,
    another `make test`) sharing the broker would take our tasks with its own workers and secrets."""
    import redis

    candidates = [int(REDIS_DB)] if REDIS_DB else range(15, 0, -1)
    for number in candidates:
        client = redis.Redis(host="127.0.0.1", port=6379, db=number)
        if REDIS_DB:
            client.flushdb()
            return client, number
        if client.set("tthc-test-owner", suffix, nx=True, ex=3600):
            if client.dbsize() == 1:  # nothing but our claim: empty, i.e. already "flushed"
                return client, number
            client.delete("tthc-test-owner")
        client.close()
    pytest.skip("no empty Redis database to use (set TTHC_TEST_REDIS_DB to one this test may flush)")


def runs(meta_db: str) -> list[tuple]:
    return pg(meta_db, """SELECT run_id, run_type, state, data_interval_start, start_date, end_date
                          FROM dag_run WHERE dag_id = %s ORDER BY data_interval_start""", (DAG_ID,))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, small_sample):
    require_service("PostgreSQL", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")
    require_service("Redis", 6379, "redis-server --daemonize yes")
    from runner.local_sources import sample_connections

    tmp = tmp_path_factory.mktemp("distributed")
    suffix = secrets.token_hex(4)
    meta_db, warehouse_db = f"tthc_test_airflow_{suffix}", f"tthc_test_warehouse_{suffix}"
    broker, redis_db = claim_redis_db(suffix)
    for name in (meta_db, warehouse_db):
        pg("postgres", f'CREATE DATABASE "{name}"', autocommit=True)
    api_port = free_port()
    meta_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{meta_db}"
    env = {
        **os.environ,
        "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", ""),
        # the workers' hostname callable is a test helper (tests/support/workers.py)
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(tmp / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": meta_url,  # psycopg 3 is async too; no asyncpg
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"tthc_test_{suffix}",  # workers listen on it too
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{meta_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "support.workers.worker_hostname",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "GX_ANALYTICS_ENABLED": "false",
        "TTHC_VAR_DIR": str(tmp / "var"),
        "TTHC_WAREHOUSE_URL": f"postgresql://postgres@127.0.0.1:5432/{warehouse_db}",
    }
    for key in ("TTHC_WORKER_NAME", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"):
        env.pop(key, None)
    (tmp / "logs").mkdir()
    procs = None
    started = time.monotonic()
    try:
        with sample_connections(small_sample) as sources:
            env.update(sources)  # the sample HTTP server runs in this process for the whole module
            procs = Processes(env, tmp / "logs")
            procs.run("db-migrate", "db", "migrate", timeout=300)
            procs.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1")
            procs.start("scheduler", "scheduler")
            procs.start("dag-processor", "dag-processor")
            procs.start("triggerer", "triggerer")
            for worker in ("w1", "w2"):
                procs.start(f"worker-{worker}", "celery", "worker", "--celery-hostname", f"{worker}@%h",
                            "--concurrency", "1",
                            env={"TTHC_WORKER_NAME": worker,
                                 "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())})
            wait_for("the DAG to be parsed and the api-server to answer",
                     lambda: api(api_port, "GET", f"/dags/{DAG_ID}")["dag_id"], procs, timeout=180)
            api(api_port, "PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
            yield {"env": env, "procs": procs, "api_port": api_port, "meta_db": meta_db,
                   "warehouse_db": warehouse_db, "tmp": tmp, "started": started}
    finally:
        if procs is not None:
            procs.stop()
        for name in (meta_db, warehouse_db):
            pg("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', autocommit=True)
        broker.flushdb()
        broker.close()


@pytest.fixture(scope="module")
def triggered(cluster):
    """One quarter triggered through the REST API, as the UI's "Trigger" with a data interval does."""
    start, end = (datetime.fromisoformat(d).replace(tzinfo=TZ).isoformat() for d in TRIGGERED)
    began = time.monotonic()
    run = api(cluster["api_port"], "POST", f"/dags/{DAG_ID}/dagRuns",
              {"logical_date": start, "data_interval_start": start, "data_interval_end": end,
               "conf": {"reason": "distributed test"}})
    state = wait_for(f"run {run['dag_run_id']} to finish", lambda: _finished(cluster, run["dag_run_id"]),
                     cluster["procs"], timeout=480, every=3)
    return {"run_id": run["dag_run_id"], "state": state, "seconds": time.monotonic() - began}


@pytest.fixture(scope="module")
def backfilled(cluster, triggered):
    began = time.monotonic()
    cluster["procs"].run("backfill", "backfill", "create", "--dag-id", DAG_ID, "--from-date", BACKFILL_FROM,
                         "--to-date", BACKFILL_TO, "--max-active-runs", "1")

    def done():
        rows = [r for r in runs(cluster["meta_db"]) if r[1] == "backfill"]
        return rows if len(rows) == 4 and all(r[2] in ("success", "failed") for r in rows) else None

    rows = wait_for("the four backfill runs to finish", done, cluster["procs"], timeout=720, every=5)
    return {"runs": rows, "seconds": time.monotonic() - began}


def _finished(cluster, run_id: str) -> str | None:
    (state,), = pg(cluster["meta_db"], "SELECT state FROM dag_run WHERE run_id = %s", (run_id,))
    return state if state in ("success", "failed") else None


def test_a_triggered_quarter_succeeds_on_both_celery_workers(cluster, triggered):
    failed = pg(cluster["meta_db"], "SELECT task_id, map_index, state FROM task_instance WHERE run_id = %s "
                                    "AND state <> 'success'", (triggered["run_id"],))
    assert triggered["state"] == "success", f"{failed}\n{cluster['procs'].tails()}"
    hosts = pg(cluster["meta_db"], "SELECT DISTINCT hostname FROM task_instance WHERE run_id = %s",
               (triggered["run_id"],))
    assert {h for (h,) in hosts} == {"w1", "w2"}
    print(f"triggered quarter: {triggered['seconds']:.0f} s")


def test_published_figures_are_in_the_postgresql_warehouse(cluster, triggered):
    rows = pg(cluster["warehouse_db"], """SELECT count(*), count(DISTINCT unit_level), sum(received_total)
                                          FROM publish.bieu06_by_unit WHERE period_start = DATE '2024-01-01'""")
    (count, levels, received), = rows
    assert count > 50 and levels == 3 and received > 0
    (reason,), = pg(cluster["warehouse_db"], "SELECT reason FROM publish.vintages WHERE period_start = DATE '2024-01-01'")
    assert "distributed test" in reason


def test_a_backfill_runs_four_quarters_one_after_another(cluster, backfilled):
    rows = backfilled["runs"]
    assert [r[2] for r in rows] == ["success"] * 4, cluster["procs"].tails()
    assert [r[3].astimezone(TZ).date().isoformat() for r in rows] == QUARTER_STARTS[1:]
    for earlier, later in zip(rows, rows[1:]):
        assert earlier[5] <= later[4], f"{later[0]} started before {earlier[0]} ended"
    published = pg(cluster["warehouse_db"], "SELECT DISTINCT period_start FROM publish.bieu06_by_unit ORDER BY 1")
    assert [d.isoformat() for (d,) in published] == QUARTER_STARTS
    print(f"backfill of four quarters: {backfilled['seconds']:.0f} s; "
          f"module so far {time.monotonic() - cluster['started']:.0f} s")


def test_a_failing_task_is_reported_with_its_source_and_quarter():
    """The failure callback wired into the DAG's default_args, called as Airflow calls it."""
    from types import SimpleNamespace

    from runner.dag_support import task_failure_alert

    context = {"ti": SimpleNamespace(task_id="extract", map_index=1, try_number=3, dag_id=DAG_ID),
               "task": SimpleNamespace(task_id="extract", op_kwargs={"source_id": "portal_dvc"}),
               "dag": SimpleNamespace(dag_id=DAG_ID), "run_id": "manual__x",
               "data_interval_start": datetime(2025, 4, 1, tzinfo=TZ), "data_interval_end": datetime(2025, 7, 1, tzinfo=TZ),
               "exception": ConnectionError("portal 503")}
    message = task_failure_alert(context)
    for part in ("tthc_quarterly.extract", "source portal_dvc", "2025-Q2", "attempt 3", "ConnectionError: portal 503"):
        assert part in message
    assert "failed" in task_failure_alert({})
