"""Runs the DAG through Airflow itself on this machine, with its metadata in SQLite under
var/airflow: one quarter with `airflow dags test`, or the whole of Airflow (UI included) with
`serve`."""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tthc.config import REPO_ROOT, load_settings, var_dir
from tthc.periods import interval_end

DAG_ID = "tthc_quarterly"
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


def airflow_env(home: Path | None = None) -> dict[str, str]:
    home = home or var_dir() / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "GX_ANALYTICS_ENABLED": "false",
        "TTHC_VAR_DIR": str(var_dir()),
        # Airflow's CLI warns about its own optional extras on every command; not ours to act on.
        "PYTHONWARNINGS": ",".join(filter(None, [
            os.environ.get("PYTHONWARNINGS", ""),
            "ignore:Could not import graphviz", "ignore:Using `httpx` with `starlette.testclient`"])),
    }


def _airflow() -> str:
    return str(Path(sys.executable).parent / "airflow")


def _metadata_db(env: dict[str, str]) -> Path:
    return Path(env["AIRFLOW_HOME"]) / "airflow.db"


def dags_test(period_label: str, dag_id: str = DAG_ID) -> int:
    settings = load_settings()
    period = settings.period(period_label)
    env = airflow_env()
    if not _metadata_db(env).exists():
        subprocess.run([_airflow(), "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    logical_date = interval_end(period, settings.timezone).isoformat()
    print(f"Running DAG {dag_id} for {period.label} ({period.start} – {period.end}) with `airflow dags test` …",
          flush=True)
    process = subprocess.Popen([_airflow(), "dags", "test", dag_id, logical_date], env=env,
                               stderr=subprocess.PIPE, text=True, errors="replace")
    for line in process.stderr:
        if not _EXIT_NOISE.match(line):
            sys.stderr.write(line)
    code = process.wait()
    correct_test_run_starts(env)
    return code


# With GX and duckdb-engine loaded in one process, DuckDB's bindings report "leaked" objects
# at interpreter exit; all work is done and flushed by then, so the report is only noise.
_EXIT_NOISE = re.compile(r"^(nanobind: |See https://nanobind| - leaked | - \.\.\. skipped remainder)")


def correct_test_run_starts(env: dict[str, str]) -> int:
    """Airflow 3.3's `DAG.test()` records a run's start_date as its logical date
    (apache/airflow#66127), so a past quarter run today shows a duration of hundreds of days in
    the UI and the API. Its run_after is the moment the test began: that becomes the start.
    Only rows with the defect are touched, so this is a no-op once Airflow is fixed."""
    database = _metadata_db(env)
    if not database.exists():
        return 0
    con = sqlite3.connect(database, timeout=30)
    try:
        with con:
            return con.execute(
                "UPDATE dag_run SET start_date = run_after WHERE triggered_by = 'TEST' AND start_date = logical_date "
                "AND run_after IS NOT NULL AND run_after <> logical_date").rowcount
    finally:
        con.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    """True when something listens on the port; a port left in TIME_WAIT by the previous session
    is free for the api-server, which binds with SO_REUSEADDR too."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def serve_env(port: int, home: Path | None = None) -> dict[str, str]:
    """airflow_env() for every service of a local Airflow on 127.0.0.1:port.

    Everyone who reaches the loopback port is admin (SimpleAuthManager with all admins), so
    there is no password to print or store. Secrets are made per session and live only in the
    services' environment. LocalExecutor is Airflow 3's executor for one machine (the
    SequentialExecutor is gone) and works with SQLite, because tasks reach the database only
    through the api-server; parallelism 2 matches this machine's cores, and with fork the
    executor starts all its workers at once (32 by default). The scheduler makes no scheduled
    runs (`use_job_schedule` off): catchup is off, so it would start today's quarter, for which
    the sample has no data. Quarters are triggered by hand, so the DAGs are not paused.
    """
    return {
        **airflow_env(home),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__INSTANCE_NAME": "TTHC (local)",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }


class Services:
    """The Airflow services as child processes, each in its own session (a Ctrl-C reaches only
    the parent, which stops them in order) with its output in var/airflow/services/<name>.log."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.logs = Path(env["AIRFLOW_HOME"]) / "services"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.started: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen([_airflow(), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT)
        self.started.append((name, process))

    def exited(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.started if p.poll() is not None]

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
        return "\n".join(text)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to every service's process group, then SIGKILL to whatever is left of them
        and of their descendants (task runners put themselves in groups of their own)."""
        import psutil

        tree = []
        for _, process in self.started:
            try:
                tree += psutil.Process(process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
        for _, process in self.started:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _, process in self.started:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for _, process in self.started:
            _signal_group(process.pid, signal.SIGKILL)
        for child in tree:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(tree, timeout=5)
        for _, process in self.started:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def get_json(port: int, path: str, method: str = "GET", body: dict | None = None, timeout: float = 10) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _ready(port: int, dag_id: str) -> bool:
    """The api-server answers, the scheduler, dag-processor and triggerer heartbeat, and the DAG
    is parsed."""
    try:
        health = get_json(port, "/api/v2/monitor/health")
        get_json(port, f"/api/v2/dags/{dag_id}")
    except (OSError, ValueError):
        return False
    return all(health.get(part, {}).get("status") == "healthy"
               for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


def quarter_interval(period_label: str) -> tuple[str, str]:
    """The data interval the timetable gives a quarter: its first instant and the next
    quarter's, in the province's time zone."""
    settings = load_settings()
    period = settings.period(period_label)
    start = datetime.combine(period.start, datetime.min.time(), ZoneInfo(settings.timezone))
    return start.isoformat(), interval_end(period, settings.timezone).isoformat()


def trigger_command(port: int, period_label: str) -> str:
    """The REST call of the UI's Trigger form with the data interval given: the run is the one
    the scheduler or a backfill makes for that quarter (logical date = its first day)."""
    start, end = quarter_interval(period_label)
    body = json.dumps({"logical_date": start, "data_interval_start": start, "data_interval_end": end})
    return (f"curl -X POST http://127.0.0.1:{port}/api/v2/dags/{DAG_ID}/dagRuns "
            f"-H 'Content-Type: application/json' -d '{body}'")


def serve(port: int, *, ready_timeout: float = 240, example_period: str = "2025-Q2") -> int:
    """Airflow's api-server (UI on 127.0.0.1:port), scheduler, dag-processor and triggerer on
    the project's DAGs until SIGINT or SIGTERM, or until a service dies. The sample's
    connections are whatever `AIRFLOW_CONN_*` this process has (see sample_connections).
    Exit status 0 after a requested stop, 1 when the metadata database or a service failed or
    Airflow was not ready in time, 2 when the port is taken."""
    if port_in_use(port):
        print(f"port {port} on 127.0.0.1 is in use; choose another (make airflow PORT=…, tthc airflow --port …)",
              file=sys.stderr)
        return 2
    env = serve_env(port)
    stop = threading.Event()
    restore = _on_signals((signal.SIGINT, signal.SIGTERM), lambda *_: stop.set())
    services = Services(env)
    try:
        print(f"Airflow metadata: {_metadata_db(env)} (migrating) …", flush=True)
        migrated = subprocess.run([_airflow(), "db", "migrate"], env=env, check=False, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, errors="replace", timeout=600)
        if migrated.returncode != 0:
            print(f"`airflow db migrate` failed:\n{migrated.stderr[-3000:]}", file=sys.stderr)
            return 1
        correct_test_run_starts(env)
        services.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        for name in SERVICES[1:]:
            services.start(name, name)
        print(f"Starting {', '.join(SERVICES)} (logs in {services.logs}) …", flush=True)
        deadline = time.monotonic() + ready_timeout
        while not _ready(port, DAG_ID):
            if failed := services.exited():
                return _report_failure(services, failed)
            if stop.wait(2):
                return 0
            if time.monotonic() > deadline:
                print(f"Airflow was not ready after {ready_timeout:.0f} s", file=sys.stderr)
                for name in SERVICES:
                    print(f"--- {name}.log\n{services.tail(name)}", file=sys.stderr)
                return 1
        get_json(port, f"/api/v2/dags/{DAG_ID}", method="PATCH", body={"is_paused": False})
        print(_banner(port, example_period, services.logs), flush=True)
        while not stop.wait(2):
            if failed := services.exited():
                return _report_failure(services, failed)
        return 0
    finally:
        print("Stopping Airflow …", flush=True)
        services.stop()
        restore()
        print("Airflow stopped.", flush=True)


def _banner(port: int, period_label: str, logs: Path) -> str:
    start, end = quarter_interval(period_label)
    timezone = load_settings().timezone
    return "\n".join([
        "",
        f"Airflow is ready: http://127.0.0.1:{port}/dags/{DAG_ID}",
        "  No login needed: everyone reaching 127.0.0.1 is admin (SimpleAuthManager, all admins).",
        f"  Trigger a quarter, e.g. {period_label}: in the UI, Trigger → Single Run, Logical Date {start[:16]},",
        f"  Data Interval \"Specify Manually\" {start[:16]} → {end[:16]} (with {timezone} as the UI's timezone);",
        "  or from a shell:",
        f"    {trigger_command(port, period_label)}",
        f"  Service logs: {logs}/<service>.log; task logs in the UI.",
        "  Ctrl-C stops everything.",
        "",
    ])


def _report_failure(services: Services, failed: list[tuple[str, int]]) -> int:
    for name, code in failed:
        print(f"Airflow's {name} exited (status {code}); the end of its log:\n{services.tail(name)}",
              file=sys.stderr)
    return 1


def _on_signals(signals: tuple[int, ...], handler: Callable) -> Callable[[], None]:
    """Installs the handler where possible (only the main thread may) and returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    return lambda: [signal.signal(sig, old) for sig, old in previous.items()]
