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


PUBLISHED_TABLES = ("bieu06_by_unit", "bieu06_by_province", "bieu06_by_field", "indicators_766")


def published_assets() -> list:
    """One Airflow asset per published table: downstream DAGs are scheduled on them."""
    from airflow.sdk import Asset

    return [Asset(name=f"tthc_publish_{table}", uri=f"tthc://warehouse/publish/{table}", group="tthc")
            for table in PUBLISHED_TABLES]


def mark_published(outlet_events, assets: list, result: dict, ctx: RunContext) -> None:
    """Says on every asset event which period and vintage was published."""
    extra = {"period": ctx.period.label, "period_start": ctx.period.start.isoformat(),
             "period_end": ctx.period.end.isoformat(), "vintage": result["vintage"],
             "new_vintage": result["new_vintage"], "warehouse_table_version": 1}
    for asset in assets:
        outlet_events[asset].extra = extra


def context_from_airflow(airflow_context: dict[str, Any]) -> RunContext:
    start: datetime = airflow_context["data_interval_start"]
    end: datetime = airflow_context["data_interval_end"]
    dag_run = airflow_context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    return make_context(run_id=airflow_context["run_id"], data_interval=(start, end), note=conf.get("reason"))
