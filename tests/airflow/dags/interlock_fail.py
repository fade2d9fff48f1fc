"""prepare succeeds, then explode raises: the run fails."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(
    dag_id="interlock_fail",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_fail():
    @task
    def prepare() -> dict:
        return {"prepared": True}

    @task
    def explode(prepared: dict) -> None:
        print("checking sanctions list")
        raise ValueError("sanctions list unreachable")

    explode(prepare())


interlock_fail()
