"""
### tthc_quarterly: the quarterly Biểu 06 consolidation

One run per quarter of the province's cut-off convention (`config/province.yaml`): the data
interval *is* the reporting period. Extract every source of `config/sources.yaml` (one mapped
task each) → canonicalize → derive figures from dossier records → validate (Great
Expectations) → reconcile → load the warehouse → publish `publish.bieu06_by_unit`.

A source that fails after its retries does not stop the run: its units are reported missing.
Every task replaces its period's outputs, so clearing and rerunning a task is safe. The
publish task emits an asset event per published table (`tthc://warehouse/publish/<table>`),
with the period and vintage in its extra; `tthc_published_consumer` shows a DAG scheduled on them.
Run conf: `{"reason": "…"}` says why a rerun publishes a new vintage; `{"full_extract": true}`
lands every source's whole period window, ignoring incremental watermarks (period close).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from runner import pipeline
from runner.dag_support import (context_from_airflow, published_assets, quarterly_schedule, stage_callable,
                                stage_task_options, task_failure_alert)

CRON, TIMEZONE = quarterly_schedule()
PUBLISHED = published_assets()


@dag(
    dag_id="tthc_quarterly",
    schedule=CronDataIntervalTimetable(CRON, timezone=TIMEZONE),
    start_date=pendulum.datetime(2024, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["tthc", "bieu06", "quarterly"],
    doc_md=__doc__,
    default_args={"owner": "tthc-data", "retries": 1, "retry_delay": timedelta(minutes=2),
                  "execution_timeout": timedelta(hours=2), "on_failure_callback": task_failure_alert},
)
def tthc_quarterly():
    @task
    def sources() -> list[str]:
        return pipeline.sources_to_extract(context_from_airflow(get_current_context()))

    @task(retries=2, retry_delay=timedelta(seconds=30), execution_timeout=timedelta(minutes=45))
    def extract(source_id: str) -> str:
        return pipeline.extract(context_from_airflow(get_current_context()), source_id)

    upstream = extract.expand(source_id=sources())
    for stage in pipeline.STAGES:  # canonicalize → derive → validate → reconcile → load → publish
        step = task(stage_callable(stage, PUBLISHED), **stage_task_options(stage, PUBLISHED))()
        upstream >> step
        upstream = step


tthc_quarterly()
