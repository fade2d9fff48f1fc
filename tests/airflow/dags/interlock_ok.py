"""Two tasks that succeed: extract (reads the run's conf) then screen (emits an asset)."""

from __future__ import annotations

import json

from airflow.sdk import Asset, dag, get_current_context, task


@dag(
    dag_id="interlock_ok",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_ok():
    @task(inlets=[Asset("s3://raw/customers")])
    def extract() -> dict:
        conf = get_current_context()["dag_run"].conf or {}
        print(f"interlock_ok conf: {json.dumps(conf, sort_keys=True)}")
        return {"rows": 3, "day": conf.get("day")}

    @task(outlets=[Asset("postgres://risk/public.sanctions_hits")])
    def screen(extracted: dict) -> dict:
        return {"hits": 2, "rows": extracted["rows"]}

    screen(extract())


interlock_ok()
