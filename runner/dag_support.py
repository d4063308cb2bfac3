"""What the DAG needs from the project, kept out of dags/ so it is tested without a scheduler."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from runner import pipeline
from runner.pipeline import RunContext, make_context
from tthc.config import load_settings
from tthc.periods import cron_for


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


def submissions_asset():
    """The asset the units' intake announces late submissions and corrections on."""
    from airflow.sdk import Asset

    from intake.events import SUBMISSIONS_ASSET_NAME, SUBMISSIONS_ASSET_URI

    return Asset(name=SUBMISSIONS_ASSET_NAME, uri=SUBMISSIONS_ASSET_URI, group="tthc")


def mark_published(outlet_events, assets: list, result: dict, ctx: RunContext) -> None:
    """Says on every asset event which period and vintage was published."""
    extra = {"period": ctx.period.label, "period_start": ctx.period.start.isoformat(),
             "period_end": ctx.period.end.isoformat(), "vintage": result["vintage"],
             "new_vintage": result["new_vintage"], "warehouse_table_version": 1}
    for asset in assets:
        outlet_events[asset].extra = extra


def stage_task_options(stage: Callable, published: list) -> dict:
    """What a stage's task needs beyond the defaults: canonicalize runs whatever the extracts
    did (a failed source is reported missing, not a failed quarter); publish announces its assets."""
    if stage is pipeline.canonicalize:
        return {"trigger_rule": "all_done"}
    if stage is pipeline.publish:
        return {"outlets": published}
    return {}


def stage_callable(stage: Callable, published: list) -> Callable[[], dict]:
    """The body of a stage's task: the run context from Airflow's, the stage, and for publish
    the period and vintage on every asset event."""
    def run_stage() -> dict:
        from airflow.sdk import get_current_context

        context = get_current_context()
        ctx = context_from_airflow(context)
        result = stage(ctx)
        if stage is pipeline.publish:
            mark_published(context["outlet_events"], published, result, ctx)
        return result

    run_stage.__name__ = run_stage.__qualname__ = stage.__name__
    run_stage.__doc__ = stage.__doc__
    return run_stage


def context_from_airflow(airflow_context: dict[str, Any]) -> RunContext:
    start: datetime = airflow_context["data_interval_start"]
    end: datetime = airflow_context["data_interval_end"]
    dag_run = airflow_context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    return make_context(run_id=airflow_context["run_id"], data_interval=(start, end), note=conf.get("reason"),
                        full_extract=bool(conf.get("full_extract", False)))


def task_failure_alert(context: dict[str, Any]) -> str:
    """on_failure_callback: one ERROR line an operator can act on without opening the UI: which
    task, which source (mapped extracts), which quarter, and the exception. Never raises, since a
    failing callback would hide the failure it reports."""
    import logging

    try:
        ti = context.get("ti") or context.get("task_instance")
        task = context.get("task")
        task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", "?")
        # after rendering, ti.task is the unmapped operator whose op_kwargs hold this map index's source
        source_id = next((kwargs["source_id"] for candidate in (getattr(ti, "task", None), task)
                          if isinstance(kwargs := getattr(candidate, "op_kwargs", None), dict) and "source_id" in kwargs),
                         None)
        map_index = getattr(ti, "map_index", -1)
        where = f" for source {source_id}" if source_id else (f" (map index {map_index})" if map_index not in (None, -1) else "")
        try:
            period = _period_label(context)
        except Exception:  # noqa: BLE001 - the period is a courtesy, the alert must go out
            period = "unknown period"
        exception = context.get("exception")
        reason = f"{type(exception).__name__}: {exception}" if exception is not None else "no exception recorded"
        attempt = getattr(ti, "try_number", None)
        dag_id = getattr(context.get("dag"), "dag_id", None) or getattr(ti, "dag_id", "?")
        message = (f"tthc task {dag_id}.{task_id}{where} "
                   f"failed for {period} (run {context.get('run_id')}, attempt {attempt}): {reason}")
    except Exception as exc:  # noqa: BLE001
        message = f"tthc task failed; the failure callback could not describe it: {exc!r}"
    logging.getLogger("tthc.alerts").error(message)
    return message


def _period_label(context: dict[str, Any]) -> str:
    from tthc.periods import from_data_interval

    period = from_data_interval(context["data_interval_start"], context["data_interval_end"], load_settings().timezone)
    return f"{period.label} ({period.start} – {period.end})"

