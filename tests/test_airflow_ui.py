"""`tthc airflow` (what `make airflow` runs) on a free port with a 2 % sample, after a `make run`
(`tthc airflow-run`) of a past quarter in the same var/: the UI's page for the DAG answers, the
REST API and the page's graph data list the DAG's tasks, the earlier run shows its real duration
(not the time since its logical date), a triggered quarter is listed with its data interval, and
a SIGTERM stops every process it started, even with a task running."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime

import psutil
import pytest

from runner.airflow_local import free_port
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("airflow_ui")]

DAG_ID = "tthc_quarterly"
TASKS = {"sources", "extract", "canonicalize", "derive", "validate", "reconcile", "load", "publish"}
QUARTER = ("2025-04-01T00:00:00+07:00", "2025-07-01T00:00:00+07:00")
RUN_TIMEOUT, READY_TIMEOUT, STOP_TIMEOUT = 150, 150, 60


def http(port: int, path: str, body: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"}, method="POST" if body else "GET")
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, response.read()


def api(port: int, path: str, body: dict | None = None) -> dict:
    return json.loads(http(port, f"/api/v2{path}", body)[1])


def interval(run: dict) -> list[datetime]:
    return [datetime.fromisoformat(run[k]) for k in ("data_interval_start", "data_interval_end")]


def alive(processes: list) -> list:
    def running(process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in processes if running(p)]


def kill(processes: list) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


def started_by(pid: int | None, var: str) -> list:
    """The process's descendants, and every process started with this test's TTHC_VAR_DIR
    whoever its parent is now (services rename themselves, which hides the environment of some)."""
    found = {}
    if pid is not None:
        try:
            found = {p.pid: p for p in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            pass
    for process in psutil.process_iter(["environ"], ad_value=None):
        if (process.info["environ"] or {}).get("TTHC_VAR_DIR") == var:
            found.setdefault(process.pid, process)
    return alive(list(found.values()))


def wait_until(what: str, check, proc: subprocess.Popen, log, timeout: float, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"`tthc airflow` exited ({proc.returncode}) before {what}:\n{log()}"
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{log()}")


def test_make_airflow_serves_the_dag_and_stops_every_process(tmp_path, small_sample):
    var = tmp_path / "var"
    shutil.copytree(small_sample, var / "sample")
    port = free_port()
    env = {**os.environ, "TTHC_VAR_DIR": str(var),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    env.pop("TTHC_WAREHOUSE_URL", None)
    out = tmp_path / "tthc-airflow.log"

    def log() -> str:
        services = sorted((var / "airflow" / "services").glob("*.log"))
        tails = [f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-20:]) for p in services]
        return "\n".join([out.read_text(errors="replace"), *tails])

    # the sample at the fixture's seed and scale is already in place, so none is generated
    sample = ["--seed", "5", "--scale", "0.02"]
    made = subprocess.run([sys.executable, "-m", "runner.cli", "airflow-run", "--period", "2025-Q2", *sample],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]

    began = time.monotonic()
    with open(out, "wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "runner.cli", "airflow", "--port", str(port), *sample],
                                env=env, cwd=REPO, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until("Airflow to be ready", lambda: "Airflow is ready" in out.read_text(), proc, log, READY_TIMEOUT)
        ready = time.monotonic() - began

        status, page = http(port, f"/dags/{DAG_ID}")
        assert status == 200 and b'<div id="root"' in page and b"<title>Airflow</title>" in page

        tasks = api(port, f"/dags/{DAG_ID}/tasks")["tasks"]
        assert {t["task_id"] for t in tasks} == TASKS
        graph = json.loads(http(port, f"/ui/structure/structure_data?dag_id={DAG_ID}")[1])
        assert TASKS <= {node["id"] for node in graph["nodes"]}
        assert api(port, f"/dags/{DAG_ID}")["is_paused"] is False

        (tested,) = api(port, f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
        assert tested["triggered_by"] == "test" and tested["state"] == "success"
        assert interval(tested) == [datetime.fromisoformat(d) for d in QUARTER]
        assert 0 < tested["duration"] < RUN_TIMEOUT, f"the `dags test` run shows {tested['duration']:.0f} s"

        start, end = QUARTER
        run = api(port, f"/dags/{DAG_ID}/dagRuns",
                  {"logical_date": start, "data_interval_start": start, "data_interval_end": end})
        listed = {r["dag_run_id"]: r for r in api(port, f"/dags/{DAG_ID}/dagRuns")["dag_runs"]}
        assert set(listed) == {tested["dag_run_id"], run["dag_run_id"]}
        assert interval(listed[run["dag_run_id"]]) == [datetime.fromisoformat(d) for d in QUARTER]
        wait_until("a task of the triggered run to start",
                   lambda: any(ti["state"] in ("running", "success") for ti in api(
                       port, f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]),
                   proc, log, 60)
    finally:
        started = started_by(proc.pid, str(var))
        stopping = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            kill(started)
            proc.wait(timeout=10)
            pytest.fail(f"`tthc airflow` did not stop within {STOP_TIMEOUT} s of SIGTERM:\n{log()}")
    stopped = time.monotonic() - stopping
    assert proc.returncode == 0, log()
    assert "Airflow stopped." in out.read_text()
    assert len(started) >= 4, f"the four services and their workers should have been running: {started}"
    leftover = {p.pid: p for p in alive(started) + started_by(None, str(var))}
    names = [f"{pid} {p.name()}" for pid, p in leftover.items()]
    kill(list(leftover.values()))
    assert not leftover, f"processes left after `tthc airflow` stopped: {names}\n{log()}"
    print(f"ready in {ready:.0f} s, stopped in {stopped:.0f} s")
