"""What the DAG needs from the project, kept out of dags/ so it is tested without a scheduler."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from tthc.config import load_settings
from tthc.periods import cron_for
from tthc.pipeline import RunContext, make_context


def quarterly_schedule() -> tuple[str, str]:
    """The cron expression bounding the province's quarters, and its timezone."""
    settings = load_settings()
    return cron_for(settings.period_convention), settings.timezone


def context_from_airflow(airflow_context: dict[str, Any]) -> RunContext:
    start: datetime = airflow_context["data_interval_start"]
    end: datetime = airflow_context["data_interval_end"]
    dag_run = airflow_context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    return make_context(run_id=airflow_context["run_id"], data_interval=(start, end), note=conf.get("reason"))
