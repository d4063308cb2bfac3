"""Runs the DAG through Airflow itself on this machine: `airflow dags test` with its
metadata in SQLite under var/airflow."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tthc.config import REPO_ROOT, load_settings, var_dir
from tthc.periods import interval_end

DAG_ID = "tthc_quarterly"


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


def dags_test(period_label: str, dag_id: str = DAG_ID) -> int:
    settings = load_settings()
    period = settings.period(period_label)
    env = airflow_env()
    airflow = str(Path(sys.executable).parent / "airflow")
    if not (Path(env["AIRFLOW_HOME"]) / "airflow.db").exists():
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    logical_date = interval_end(period, settings.timezone).isoformat()
    print(f"Running DAG {dag_id} for {period.label} ({period.start} – {period.end}) with `airflow dags test` …",
          flush=True)
    process = subprocess.Popen([airflow, "dags", "test", dag_id, logical_date], env=env,
                               stderr=subprocess.PIPE, text=True, errors="replace")
    for line in process.stderr:
        if not _EXIT_NOISE.match(line):
            sys.stderr.write(line)
    return process.wait()


# With GX and duckdb-engine loaded in one process, DuckDB's bindings report "leaked" objects
# at interpreter exit; all work is done and flushed by then, so the report is only noise.
_EXIT_NOISE = re.compile(r"^(nanobind: |See https://nanobind| - leaked | - \.\.\. skipped remainder)")
