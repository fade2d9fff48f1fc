"""A scheduled DAG for discovery tests only; the test fixture leaves it paused."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(
    dag_id="interlock_daily",
    schedule="@daily",
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_daily():
    @task
    def noop() -> dict:
        return {"ok": True}

    noop()


interlock_daily()
