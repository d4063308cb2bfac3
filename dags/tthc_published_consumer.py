"""
### tthc_published_consumer: an example downstream DAG

Scheduled on the assets that `tthc_quarterly`'s publish task emits, one per published table.
It reads only the `publish` views, for the period and vintage carried in the triggering asset
event, and writes a small summary under var/downstream/: the shape a report generator takes.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

from runner.dag_support import published_assets

PUBLISHED = published_assets()


@dag(
    dag_id="tthc_published_consumer",
    schedule=PUBLISHED,
    start_date=pendulum.datetime(2024, 1, 1, tz="Asia/Ho_Chi_Minh"),
    catchup=False,
    tags=["tthc", "example", "downstream"],
    doc_md=__doc__,
    default_args={"owner": "tthc-data", "retries": 1, "retry_delay": timedelta(minutes=1)},
)
def tthc_published_consumer():
    @task
    def summarise_published() -> str:
        from runner.consumer import summarise

        events = get_current_context()["triggering_asset_events"] or {}
        extras = [event.extra for asset_events in events.values() for event in asset_events if event.extra]
        if not extras:  # a manual run: the newest publication
            return str(summarise())
        return str(summarise(extras[0]["period_start"], extras[0]["period_end"], extras[0]["vintage"]))

    summarise_published()


tthc_published_consumer()
