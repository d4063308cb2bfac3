"""Every DAG imports cleanly and follows the project's policy; parsing does no work."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def dagbag(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "tthc_quarterly" in dagbag.dags


def test_policy(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_quarterly_dag_shape(dagbag):
    dag = dagbag.dags["tthc_quarterly"]
    assert dag.max_active_runs == 1
    order = ["canonicalize", "derive", "validate", "reconcile", "load", "publish"]
    for upstream, downstream in zip(order, order[1:]):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    assert dag.get_task("canonicalize").trigger_rule == "all_done"


def test_parsing_does_no_work(tmp_path):
    """Importing the DAG file must not touch sources, the warehouse or var/."""
    env = {**os.environ, "TTHC_VAR_DIR": str(tmp_path / "var"), "AIRFLOW_HOME": str(tmp_path / "home"),
           "AIRFLOW_CONN_TTHC_PORTAL_DVC": "http://nowhere.invalid:1"}
    code = "import runpy, time; t=time.time(); runpy.run_path('dags/tthc_quarterly.py'); print(time.time()-t)"
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "var").exists()
    assert time.time() - started < 60


def test_late_corrections_rerun_on_the_intakes_asset(dagbag):
    """The intake's asset events (intake/events.py) schedule the rerun of a quarter."""
    from intake.events import SUBMISSIONS_ASSET_URI

    dag = dagbag.dags["tthc_late_corrections"]
    uris = {getattr(a, "uri", None) for a in _assets(dag.timetable.asset_condition)}
    assert uris == {SUBMISSIONS_ASSET_URI}
    assert dag.max_active_runs == 1 and [t.task_id for t in dag.tasks] == ["rerun_corrected_quarters"]


def _assets(condition) -> list:
    objects = getattr(condition, "objects", None)
    return [a for o in objects for a in _assets(o)] if objects is not None else [condition]
