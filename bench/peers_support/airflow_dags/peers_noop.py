"""bench/peers.py's Airflow workload: three chained tasks that pass a number along, as
bench/throughput.py's flow does (a -> b -> c, each adding one)."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="peers_noop", schedule=None, catchup=False, tags=["interlock-peers"],
     default_args={"retries": 0})
def peers_noop():
    @task
    def a() -> int:
        return 1

    @task
    def b(v: int) -> int:
        return v + 1

    @task
    def c(v: int) -> int:
        return v + 1

    c(b(a()))


peers_noop()
