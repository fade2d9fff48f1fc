"""Data handoff latency: a Dagster materialization -> an Interlock flow -> an Airflow DAG run.

The chain of tests/test_data_handoffs.py (its first test), timed N times one after another,
against real servers: a run of Dagster's `customers_assets_job` materializes `raw_customers`;
Dagster's run-status sensor pushes the finished run, with its materializations, to
Interlock's API; the flow `score-customers` (`after: {dataset: warehouse/raw_customers}`)
runs a script node that `produces` `s3://lake/scores`, which Interlock reports to Airflow
as an asset event; Airflow's DAG `interlock_on_scores` (scheduled on that asset) gets a
DAG run. Per handoff it prints the points on the way, all on this host's clock:

    materialized   the materialization's timestamp in Dagster (GraphQL `assetMaterializations`)
    dagster end    the Dagster run's endTime (the sensor only fires once the run has ended)
    interlock      the Interlock run's created_at (the push arrived and fired the flow)
    reported       the Interlock run's finished_at (its REPORT to Airflow is written then)
    airflow        the new DAG run's `queued_at` (the scheduler created it)

and p50/p99/max of materialized -> airflow, against dagster-airlift's 30 s default polling
interval (its sensor's `minimum_interval_seconds`). Push is on (Interlock's API listens where
the sensor posts); the watcher (the polling fallback) runs every --watch-seconds, one hour
by default, so that every handoff measured went by push. Each handoff waits for the
previous DAG run to end, so latencies do not queue on each other. One warm-up handoff is
run first and left out of the figures.

    python bench/handoffs.py --count 20

It starts a real Airflow 3.3 and a real Dagster 1.13 with the test harness (their
virtualenvs are cached under ~/.cache/interlock): 1-4 minutes before the first handoff
(45-90 s measured on a 2-core machine; up to 4 minutes allowed), then ~25-40 s a handoff.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ON_SCORES = "interlock_on_scores"
AIRLIFT_POLL_S = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Handoff:
    materialized: datetime
    dagster_end: datetime
    interlock: datetime
    reported: datetime
    airflow: datetime

    def seconds(self, since: datetime, until: datetime) -> float:
        return (until - since).total_seconds()

    @property
    def total(self) -> float:
        return self.seconds(self.materialized, self.airflow)


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-handoffs-"))
    _environment(home, args.watch_seconds)
    from airflow_harness import AirflowServer
    from airflow_harness import ensure_venv as airflow_venv
    from dagster_harness import DagsterServer
    from dagster_harness import ensure_venv as dagster_venv

    airflow = AirflowServer(home / "airflow", airflow_venv())
    dagster = DagsterServer(home / "dagster", dagster_venv())
    _configure(home, airflow, dagster)
    t0 = time.monotonic()
    try:
        airflow.start()
        dagster.start()
        airflow.wait_healthy(240)
        dagster.wait_healthy(180)
        airflow.unpause(ON_SCORES)
        print(f"servers up in {time.monotonic() - t0:.0f} s (Airflow {airflow.url}, "
              f"Dagster {dagster.url})", flush=True)
        _measure(args.count, airflow, dagster)
    finally:
        dagster.stop()
        airflow.stop()


def _environment(home: Path, watch_seconds: float) -> None:
    """Interlock's environment, set before any of its modules is imported."""
    os.environ.update({
        "INTERLOCK_HOME": str(home),
        "INTERLOCK_DATABASE_URL": f"sqlite:///{home / 'interlock.db'}",
        "INTERLOCK_POLICIES": str(home / "policies"),
        "INTERLOCK_SYSTEMS": str(home / "systems.yaml"),
        "INTERLOCK_DATASETS": str(home / "datasets.yaml"),
        "INTERLOCK_WATCH_SECONDS": str(watch_seconds),
    })
    os.environ.setdefault("INTERLOCK_RUN_AS", "root")  # as tests/conftest.py: script nodes
    os.environ.pop("INTERLOCK_BROKER_URL", None)


def _configure(home: Path, airflow: Any, dagster: Any) -> None:
    """The systems and dataset mapping of the tests' `both` fixture."""
    (home / "systems.yaml").write_text(dedent(f"""
        systems:
          airflow/test: {{url: "{airflow.url}"}}
          dagster/test:
            url: "{dagster.url}"
            events_secret: {{env: DAGSTER_TEST_EVENTS_SECRET}}
    """))
    from test_data_handoffs import MAPPING  # the test's mapping: the same chain

    (home / "datasets.yaml").write_text(MAPPING)
    os.environ["DAGSTER_TEST_EVENTS_SECRET"] = dagster.events_secret


def _measure(count: int, airflow: Any, dagster: Any) -> None:
    from airflow_flows import push_api
    from test_data_handoffs import SCORE

    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations import runs as ops
    from interlock.operations.runtime import periodic_jobs

    ops.register(SCORE)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        with push_api(dagster.events_port, dispatcher):
            warm = _handoff(airflow, dagster)
            print(f"warm-up (left out): {warm.total:.2f} s", flush=True)
            _header()
            handoffs = []
            for i in range(count):
                handoffs.append(_handoff(airflow, dagster))
                _row(i + 1, handoffs[-1])
    finally:
        dispatcher.close()
    _summary(handoffs)


def _handoff(airflow: Any, dagster: Any) -> Handoff:
    """Launch one Dagster run; wait for the Interlock run and the DAG run it leads to."""
    from helpers import wait_run

    before = {r["dag_run_id"] for r in _wait(lambda: _dag_runs(airflow), "the DAG runs")}
    dagster_run = dagster.launch("customers_assets_job")
    run = _wait(lambda: _interlock_run(dagster_run), f"the flow fired by {dagster_run}")
    detail = wait_run(run.id, timeout=120)
    if detail.state.value != "succeeded":
        raise RuntimeError(f"Interlock run {run.id} {detail.state.value}: "
                           f"{[(n.id, n.error) for n in detail.nodes]}")
    dag_run = _wait(lambda: next((r for r in _dag_runs(airflow) or ()
                                  if r["dag_run_id"] not in before), None),
                    f"the DAG run of {ON_SCORES} after {dagster_run}")
    path = f"/api/v2/dags/{ON_SCORES}/dagRuns/{dag_run['dag_run_id']}"
    _wait(lambda: _tolerant(lambda: airflow.get_json(path)["end_date"]),
          f"the end of DAG run {dag_run['dag_run_id']}", timeout=300)
    [mat] = [m for m in dagster.asset_materializations(["raw_customers"])
             if m["runId"] == dagster_run]
    assert detail.finished_at is not None
    return Handoff(materialized=datetime.fromtimestamp(int(mat["timestamp"]) / 1000, UTC),
                   dagster_end=datetime.fromtimestamp(dagster.run(dagster_run)["endTime"], UTC),
                   interlock=_utc(detail.created_at), reported=_utc(detail.finished_at),
                   airflow=datetime.fromisoformat(dag_run["queued_at"]))


def _interlock_run(dagster_run: str) -> Any:
    from interlock.operations import runs as ops
    from interlock.store.runs import RunFilter

    runs = ops.list_runs(filters=RunFilter(flow_id="score-customers")).runs
    return next((r for r in runs if r.trigger.get("external_id") == dagster_run), None)


def _dag_runs(airflow: Any) -> list[dict[str, Any]] | None:
    return _tolerant(lambda: airflow.get_json(f"/api/v2/dags/{ON_SCORES}/dagRuns",
                                              params={"limit": 100})["dag_runs"])


def _tolerant(call: Callable[[], T]) -> T | None:
    """None when Airflow's API times out or errs: on a loaded host its API server stalls
    for tens of seconds (the DAG runs' own timestamps are not affected: they are read later)."""
    import httpx
    from airflow_harness import AirflowHarnessError

    try:
        return call()
    except (httpx.HTTPError, AirflowHarnessError) as exc:
        print(f"  (Airflow API: {type(exc).__name__}, asked again)", file=sys.stderr)
        return None


def _wait(condition: Callable[[], T | None], what: str, timeout: float = 120) -> T:
    deadline = time.monotonic() + timeout
    while (found := condition()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return found


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _header() -> None:
    print(f"{'#':>3}  {'mat->end':>9}  {'end->IL':>8}  {'IL run':>7}  {'rep->AF':>8}  "
          f"{'mat->AF':>8}   (seconds; mat = Dagster materialization, end = Dagster run end, "
          "IL = Interlock run created, rep = Interlock run finished, AF = DAG run queued_at)")


def _row(i: int, h: Handoff) -> None:
    print(f"{i:3d}  {h.seconds(h.materialized, h.dagster_end):9.2f}  "
          f"{h.seconds(h.dagster_end, h.interlock):8.2f}  "
          f"{h.seconds(h.interlock, h.reported):7.2f}  "
          f"{h.seconds(h.reported, h.airflow):8.2f}  {h.total:8.2f}", flush=True)


def _summary(handoffs: list[Handoff]) -> None:
    def stats(values: list[float]) -> tuple[float, float, float]:
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return statistics.median(ordered), p99, ordered[-1]

    legs = {"Dagster materialization -> Dagster run end (the rest of the run)":
            [h.seconds(h.materialized, h.dagster_end) for h in handoffs],
            "Dagster run end -> Interlock run created (sensor tick, push, intake)":
            [h.seconds(h.dagster_end, h.interlock) for h in handoffs],
            "Interlock run created -> Airflow DAG run queued (node, report, scheduler)":
            [h.seconds(h.interlock, h.airflow) for h in handoffs],
            "Dagster run end -> Airflow DAG run queued":
            [h.seconds(h.dagster_end, h.airflow) for h in handoffs]}
    for name, values in legs.items():
        p50, p99, top = stats(values)
        print(f"  {name}: p50 {p50:.2f} s, p99 {p99:.2f} s, max {top:.2f} s")
    p50, p99, top = stats([h.total for h in handoffs])
    print(f"handoff Dagster materialization -> Airflow DAG run (push on), n={len(handoffs)}: "
          f"p50 {p50:.2f} s, p99 {p99:.2f} s, max {top:.2f} s; dagster-airlift polls every "
          f"{AIRLIFT_POLL_S:.0f} s: 30/p50 = {AIRLIFT_POLL_S / p50:.1f} x, "
          f"30/p99 = {AIRLIFT_POLL_S / p99:.1f} x")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="handoffs measured (20)")
    parser.add_argument("--watch-seconds", type=float, default=3600.0,
                        help="INTERLOCK_WATCH_SECONDS, the polling fallback (3600: push only)")
    return parser.parse_args()


if __name__ == "__main__":
    main()
