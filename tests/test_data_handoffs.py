"""Data-aware handoffs across real Dagster 1.13 and Airflow 3.3 (issue 19):

- an asset materialized in Dagster (not by Interlock) fires an Interlock flow by push, with
  its metadata as inputs; the flow's node produces a dataset mapped to an Airflow asset,
  and the Airflow DAG scheduled on that asset starts, with Interlock's run in the event;
- an Airflow asset event (a DAG's outlet) fires a flow, through the watcher, whose node's
  dataset is reported to Dagster as a materialization;
- the watcher's position is durable: a new watcher (a restart) takes in what happened
  while none ran, once, and a second look fires nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from airflow_flows import push_api
from airflow_harness import AirflowHarnessError, AirflowServer
from dagster_harness import DagsterServer
from helpers import wait_run

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.events.watch import Watcher
from interlock.lineage.nodes import Stream
from interlock.operations import reads
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.store.runs import RunFilter

pytestmark = pytest.mark.timeout(600)
NS = "tests.handoffs"
ON_SCORES = "interlock_on_scores"

MAPPING = """
datasets:
  - namespace: warehouse
    name: raw_customers
    assets: [{system: dagster/test, key: raw_customers}]
  - namespace: s3://lake
    name: scores
    assets: [{system: airflow/test, key: "s3://lake/scores"}]
  - namespace: postgres://risk
    name: public.sanctions_hits
    assets:
      - {system: airflow/test, key: "postgres://risk/public.sanctions_hits"}
      - {system: dagster/test, key: risk/sanctions_hits}
"""

SCORE = f"""
id: score-customers
namespace: {NS}
inputs: {{rows: {{type: integer}}, dagster_run: {{type: string}}}}
triggers:
  - after: {{dataset: warehouse/raw_customers}}
    inputs:
      rows: "{{{{ trigger.metadata.rows }}}}"
      dagster_run: "{{{{ trigger.external_id }}}}"
nodes:
  score:
    uses: script
    with:
      command: "echo scored=$ROWS >> $INTERLOCK_OUTPUT"
      env: {{ROWS: "{{{{ inputs.rows }}}}"}}
    produces: [{{namespace: "s3://lake", name: scores}}]
"""

REVIEW = f"""
id: review-hits
namespace: {NS}
inputs: {{dag: {{type: string}}}}
triggers:
  - after: {{dataset: postgres://risk/public.sanctions_hits}}
    inputs: {{dag: "{{{{ trigger.job_id }}}}"}}
nodes:
  review:
    uses: noop
    produces: [{{namespace: "postgres://risk", name: public.sanctions_hits}}]
"""


@pytest.fixture
def both(airflow_server: AirflowServer, dagster_server: DagsterServer, sqlite_store: str,
         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    (tmp_path / "systems.yaml").write_text(dedent(f"""
        systems:
          airflow/test: {{url: "{airflow_server.url}"}}
          dagster/test:
            url: "{dagster_server.url}"
            events_secret: {{env: DAGSTER_TEST_EVENTS_SECRET}}
    """))
    (tmp_path / "datasets.yaml").write_text(MAPPING)
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
    monkeypatch.setenv("INTERLOCK_DATASETS", str(tmp_path / "datasets.yaml"))
    monkeypatch.setenv("DAGSTER_TEST_EVENTS_SECRET", dagster_server.events_secret)
    # The watcher looks only when a test asks (Watcher().tick): what fires otherwise came
    # by push (bench/handoffs.py found a 1 s watcher can beat the 5 s sensor loop).
    monkeypatch.setenv("INTERLOCK_WATCH_SECONDS", "3600")
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def _runs(flow_id: str) -> list[Any]:
    return ops.list_runs(filters=RunFilter(flow_id=flow_id)).runs


def _runs_after(flow_id: str, dagster_run: str) -> list[Any]:
    """The runs of ``flow_id`` fired by what ``dagster_run`` wrote (the server is shared
    by the session: older materializations may fire runs of their own)."""
    return [r for r in _runs(flow_id) if r.trigger.get("external_id") == dagster_run]


def _wait(condition: Any, what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def _dag_runs(airflow: AirflowServer, dag_id: str) -> list[dict[str, Any]]:
    return airflow.get_json(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]


def _event_of(airflow: AirflowServer, run_id: str) -> dict[str, Any] | None:
    """The extra of the asset event Interlock's run ``run_id`` created, once a DAG run
    came of it. Airflow 3.3.2 answers 500 to asset event listings while a DAG run they
    created has no start date yet (and to a DAG run's `upstreamAssetEvents` always):
    asked again until it answers."""
    try:
        events = airflow.get_json("/api/v2/assets/events",
                                  params={"limit": 100, "order_by": "-timestamp"})
    except AirflowHarnessError:
        return None
    return next((e["extra"] for e in events["asset_events"]
                 if (e["extra"] or {}).get("interlock/run_id") == run_id
                 and any(d["dag_id"] == ON_SCORES for d in e["created_dagruns"])), None)


def test_a_dagster_materialization_reaches_an_airflow_dag_through_an_interlock_flow(
        both: EmbeddedDispatcher, airflow_server: AirflowServer,
        dagster_server: DagsterServer) -> None:
    airflow_server.unpause(ON_SCORES)
    ops.register(SCORE)
    before = len(_dag_runs(airflow_server, ON_SCORES))
    with push_api(dagster_server.events_port, both):
        dagster_run = dagster_server.launch("customers_assets_job")
        [run] = _wait(lambda: _runs_after("score-customers", dagster_run),
                      "the flow fired by the materialization")
    detail = wait_run(run.id, timeout=120)
    assert detail.state.value == "succeeded", [(n.id, n.error) for n in detail.nodes]
    assert detail.inputs == {"rows": 3, "dagster_run": dagster_run}  # the asset's metadata
    assert detail.trigger["dataset"] == "warehouse/raw_customers"
    assert detail.trigger["system"] == "dagster/test"
    # Pushed by the hook when `raw_customers`'s step succeeded, before the run ended (the
    # run-status sensor pushes after the end, at Dagster's 5 s sensor loop).
    _wait(lambda: dagster_server.run_status(dagster_run) == "SUCCESS", "the Dagster run")
    ended = dagster_server.run(dagster_run)["endTime"]
    assert detail.created_at.timestamp() < ended, (detail.created_at, ended)

    _wait(lambda: _dag_runs(airflow_server, ON_SCORES)[before:], "the asset-scheduled "
          "DAG run in Airflow")
    # The event Interlock created for this run, and the DAG run it created (other runs of
    # the flow, fired by older materializations of the shared server, may have made more).
    extra = _wait(lambda: _event_of(airflow_server, run.id), "the asset event of the run "
                  "and the DAG run it created")
    assert extra["interlock/node_id"] == "score"
    assert extra["interlock/trace_id"] == detail.trace_id

    impact = reads.lineage_impact("dataset:warehouse:raw_customers", direction=Stream.DOWNSTREAM,
                                  depth=10)
    assert {"name": ON_SCORES, "system": "airflow/test"}.items() <= \
        next(j for j in impact["jobs"]["airflow/test"]).items()
    assert impact["flows"] == [f"{NS}/score-customers"]


def test_an_airflow_asset_event_fires_a_flow_that_reports_to_dagster(
        both: EmbeddedDispatcher, airflow_server: AirflowServer,
        dagster_server: DagsterServer) -> None:
    ops.register(REVIEW)
    Watcher().tick(both)  # a first look: the position is set before the event
    dag_run = airflow_server.trigger("interlock_ok", conf={"day": "2026-12-01"})
    airflow_server.wait_dag_run("interlock_ok", dag_run["dag_run_id"])
    def fired() -> list[Any]:
        Watcher().tick(both)  # no push for Airflow's asset events: the watcher reads them
        return [r for r in _runs("review-hits")  # (a first look takes older DAG runs in too)
                if r.trigger.get("external_id") == dag_run["dag_run_id"]]
    [run] = _wait(fired, "the flow fired by Airflow's asset event")
    detail = wait_run(run.id, timeout=60)
    assert detail.state.value == "succeeded"
    assert detail.inputs == {"dag": "interlock_ok"}

    def reported() -> list[dict[str, Any]]:
        return [m for m in dagster_server.asset_materializations(["risk", "sanctions_hits"])
                if any(e["label"] == "interlock/run_id" and e.get("text") == run.id
                       for e in m["metadataEntries"])]
    _wait(reported, "the runless materialization in Dagster")

    # Data made in Dagster itself (not by Interlock): the dataset's third writer.
    dagster_server.report_materialization(["risk", "sanctions_hits"], metadata={"rows": 2})
    Watcher().tick(both)

    def writers() -> set[str]:
        history = reads.dataset_history(namespace="postgres://risk",
                                        name="public.sanctions_hits", limit=50, cursor=None,
                                        access="write")
        return {item.system or "" for item in history.items}
    assert _wait(lambda: writers() >= {"airflow/test", "interlock", "dagster/test"} and
                 writers(), "writers from three systems") == \
        {"airflow/test", "interlock", "dagster/test"}


def test_a_restarted_watcher_takes_in_what_it_missed_once(
        both: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    ops.register(SCORE)
    Watcher().tick(both)  # the position, durable in the store (a first look also takes in
    earlier = {r.id for r in _runs("score-customers")}  # the last minutes: other tests')
    first = dagster_server.launch("customers_assets_job")  # no push: the API is not running
    second = dagster_server.launch("customers_assets_job")
    for run_id in (first, second):
        _wait(lambda r=run_id: dagster_server.run_status(r) == "SUCCESS", f"Dagster run {run_id}")
    restarted = Watcher()  # nothing in memory: only the store's position
    restarted.tick(both)
    def new_runs() -> list[Any]:
        return [r for r in _runs("score-customers") if r.id not in earlier]
    _wait(lambda: len(new_runs()) >= 2, "two runs, one per materialization")
    Watcher().tick(both)
    time.sleep(1.0)
    assert sorted(r.trigger["external_id"] for r in new_runs()) == sorted([first, second])


DAILY = f"""
id: load-orders
namespace: {NS}
inputs: {{day: {{type: string}}, rows: {{type: integer}}}}
triggers:
  - after: {{dataset: dagster/test/daily_orders}}   # an unmapped asset: <system>/<key>
    inputs: {{day: "{{{{ trigger.partition }}}}", rows: "{{{{ trigger.metadata.rows }}}}"}}
nodes:
  load: {{uses: noop}}
"""


def test_a_partitioned_materialization_gives_its_partition_and_metadata_as_inputs(
        both: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    ops.register(DAILY)
    with push_api(dagster_server.events_port, both):
        launched = dagster_server.launch("daily_orders_job",
                                         tags={"dagster/partition": "2026-12-01"})
        [run] = _wait(lambda: _runs_after("load-orders", launched),
                      "the flow fired by the partition")
    detail = wait_run(run.id, timeout=60)
    assert detail.state.value == "succeeded"
    assert detail.inputs == {"day": "2026-12-01", "rows": 12}
    assert detail.trigger["partition"] == "2026-12-01"
