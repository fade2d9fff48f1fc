"""Fails on its first try, succeeds when cleared and run again (same DAG run)."""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="interlock_flaky",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_flaky():
    @task
    def flaky() -> dict:
        try_number = get_current_context()["ti"].try_number
        print(f"flaky try_number={try_number}")
        if try_number == 1:
            raise RuntimeError("first try fails")
        return {"ok": True}

    flaky()


interlock_flaky()
