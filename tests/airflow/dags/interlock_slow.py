"""Sleeps conf["seconds"] (default 20) seconds: for cancel / restart tests."""

from __future__ import annotations

import time

from airflow.sdk import dag, get_current_context, task


@dag(
    dag_id="interlock_slow",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_slow():
    @task
    def wait() -> dict:
        conf = get_current_context()["dag_run"].conf or {}
        seconds = conf.get("seconds", 20)
        print(f"sleeping {seconds}s")
        time.sleep(float(seconds))
        return {"slept": seconds}

    wait()


interlock_slow()
