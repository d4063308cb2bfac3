"""
### tthc_late_corrections: rerun a quarter when a unit submits late or corrects its Biểu 06

Scheduled on the asset `tthc://intake/submissions`, which the units' intake (`tthc intake
serve`) announces through Airflow's REST API when a unit replaces a submitted workbook or
submits after the quarter was published. Each event's extra names the period, the unit, the
workbook (file, sha256) and the reason ("late correction from Xã …, received …: …"); the
task reruns each named quarter once, as `tthc run --period P --reason "…"` does, so a changed
figure makes a new vintage with that reason (README, "Commune intake").
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from runner.dag_support import submissions_asset

SUBMISSIONS = submissions_asset()


@dag(
    dag_id="tthc_late_corrections",
    schedule=[SUBMISSIONS],
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    max_active_runs=1,
    tags=["tthc", "bieu06", "intake"],
    doc_md=__doc__,
    default_args={"owner": "tthc-data", "retries": 1, "retry_delay": timedelta(minutes=2),
                  "execution_timeout": timedelta(hours=2)},
)
def tthc_late_corrections():
    @task
    def rerun_corrected_quarters() -> dict:
        from runner.late_corrections import rerun

        events = get_current_context()["triggering_asset_events"] or {}
        return rerun([event.extra for asset_events in events.values() for event in asset_events if event.extra])

    rerun_corrected_quarters()


tthc_late_corrections()
