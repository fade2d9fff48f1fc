"""Scheduled on an asset that Interlock reports (`s3://lake/scores`): a DAG run starts when
an asset event for it is created, here by Interlock when a node produces the mapped dataset.
Paused until a test unpauses it (tests/test_data_handoffs.py)."""

from __future__ import annotations

from airflow.sdk import Asset, dag, task

SCORES = Asset("s3://lake/scores")


@dag(dag_id="interlock_on_scores", schedule=[SCORES], catchup=False,
     tags=["interlock-test"], default_args={"retries": 0})
def interlock_on_scores():
    @task
    def publish() -> dict:
        return {"published": True}

    publish()


interlock_on_scores()
