"""`after: {dataset: ...}` and `after: {datasets: [...], mode: all}`: a node's `produces:`
or a foreign system's asset event starts the flows waiting on the dataset, once per update,
with the update's data as inputs; `mode: all` waits until every dataset was updated."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import select, update

from interlock.adapters.contract import AssetEvent, ForeignEvent
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.events import assets, intake
from interlock.operations import runs as ops
from interlock.states import NodeState
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.runs import RunFilter
from interlock.store.tables import Attempt, AuditRecord, DatasetUpdate
from tests.helpers import wait_run

LAKE = "s3://lake"


def _producer(flow_id: str, name: str) -> None:
    ops.register(dedent(f"""
        id: {flow_id}
        namespace: tests.data
        nodes:
          write:
            uses: noop
            with: {{rows: 3}}
            produces: [{{namespace: "{LAKE}", name: {name}}}]
    """).lstrip())


def _runs_of(flow_id: str) -> list[str]:
    return [r.id for r in ops.list_runs(filters=RunFilter(flow_id=flow_id)).runs]


def _wait_runs(flow_id: str, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(found := _runs_of(flow_id)) < count:
        assert time.monotonic() < deadline, f"{flow_id}: {len(found)} runs, wanted {count}"
        time.sleep(0.05)
    return found


def _start(flow_id: str, embedded: EmbeddedDispatcher) -> None:
    run_id = ops.start_run(namespace="tests.data", flow_id=flow_id, inputs={},
                           dispatcher=embedded)
    assert wait_run(run_id).state.value == "succeeded"


def test_a_produced_dataset_starts_the_waiting_flow_with_the_update_as_inputs(
        embedded: EmbeddedDispatcher) -> None:
    _producer("writer", "orders")
    ops.register(dedent(f"""
        id: on-orders
        namespace: tests.data
        inputs: {{source: {{type: string}}, dataset: {{type: string}}}}
        triggers:
          - after: {{dataset: "{LAKE}/orders"}}
            inputs:
              source: "{{{{ trigger.job_id }}}}"
              dataset: "{{{{ trigger.dataset }}}}"
        nodes:
          step: {{uses: noop}}
    """).lstrip())
    _start("writer", embedded)
    [run_id] = _wait_runs("on-orders", 1)
    detail = wait_run(run_id)
    assert detail.state.value == "succeeded"
    assert detail.inputs == {"source": "tests.data/writer", "dataset": f"{LAKE}/orders"}
    assert detail.trigger["dataset"] == f"{LAKE}/orders"
    [writer] = _runs_of("writer")
    assert detail.trace_id == ops.get_run(writer).trace_id  # one trace across the handoff
    _start("writer", embedded)  # a second update: a second run, not the first again
    assert len(_wait_runs("on-orders", 2)) == 2
    time.sleep(0.5)
    assert len(_runs_of("on-orders")) == 2


def test_mode_all_fires_once_every_dataset_was_updated_since_it_last_fired(
        embedded: EmbeddedDispatcher) -> None:
    _producer("write-a", "a")
    _producer("write-b", "b")
    ops.register(dedent(f"""
        id: on-both
        namespace: tests.data
        triggers:
          - after: {{datasets: ["{LAKE}/a", "{LAKE}/b"], mode: all}}
        nodes:
          step: {{uses: noop}}
    """).lstrip())
    _start("write-a", embedded)
    _start("write-a", embedded)
    time.sleep(0.5)
    assert _runs_of("on-both") == []  # b was never updated
    _start("write-b", embedded)
    _wait_runs("on-both", 1)
    _start("write-b", embedded)  # a not updated since: nothing
    time.sleep(0.5)
    assert len(_runs_of("on-both")) == 1
    _start("write-a", embedded)
    assert len(_wait_runs("on-both", 2)) == 2


def _event(ref: str, key: str = "risk/hits", **extra: object) -> AssetEvent:
    return AssetEvent(system="dagster/test", key=key, ref=ref, at=datetime.now(UTC),
                      job_id="hits_job", run_id="r1", partition="2026-12-01",
                      metadata={"rows": 7, **extra})


def test_a_foreign_asset_event_fires_once_however_often_it_is_seen(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(dedent("""
        id: on-hits
        namespace: tests.data
        inputs: {day: {type: string}, rows: {type: integer}}
        triggers:
          - after: {dataset: dagster/test/risk/hits}
            inputs: {day: "{{ trigger.partition }}", rows: "{{ trigger.metadata.rows }}"}
        nodes:
          step: {uses: noop}
    """).lstrip())
    assets.take([_event("m:1")], origin="test", dispatcher=embedded)
    assets.take([_event("m:1"), _event("m:1")], origin="test", dispatcher=embedded)  # again
    [run_id] = _wait_runs("on-hits", 1)
    assert wait_run(run_id).inputs == {"day": "2026-12-01", "rows": 7}
    # What Interlock itself reported to the system is not taken in a second time.
    assets.take([_event("m:2", **{"interlock/attempt": 1})], origin="test",
                dispatcher=embedded)
    time.sleep(0.5)
    assert len(_runs_of("on-hits")) == 1


def test_a_mapping_that_fails_refuses_the_firing_and_starts_nothing(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(dedent("""
        id: needs-rows
        namespace: tests.data
        inputs: {rows: {type: integer}}
        triggers:
          - after: {dataset: dagster/test/risk/hits}
            inputs: {rows: "{{ trigger.metadata.missing }}"}
        nodes:
          step: {uses: noop}
    """).lstrip())
    assets.take([_event("m:3")], origin="test", dispatcher=embedded)
    time.sleep(0.3)
    assert _runs_of("needs-rows") == []
    with session_scope() as session:
        refused = [r.after for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_REFUSED.value,
            AuditRecord.target == "tests.data/needs-rows"))]
    assert len(refused) == 1
    assert "rows" in str(refused[0]["problems"]) and "missing" in str(refused[0]["problems"])


@pytest.mark.parametrize("after,words", [
    ("{dataset: a/b, flow: x}", ["names one of"]),
    ("{dataset: a/b, mode: all}", ["mode: all", "datasets"]),
    ("{datasets: []}", ["datasets"]),
    ("{dataset: " + "x" * 701 + "}", ["dataset"]),
])
def test_a_bad_dataset_trigger_is_refused_at_registration(
        embedded: EmbeddedDispatcher, after: str, words: list[str]) -> None:
    with pytest.raises(SpecError) as info:
        ops.register(f"id: bad\nnamespace: tests.data\ntriggers:\n  - after: {after}\n"
                     "nodes: {step: {uses: noop}}\n")
    text = str(info.value)
    assert all(w in text for w in words), text


def _cron_run(run: str, state: NodeState, exit_code: int) -> ForeignEvent:
    at = datetime.now(UTC)
    return ForeignEvent(system="cron/db1", job_id="export", external_id=run,
                        remote_status=f"exited {exit_code}", state=state, run_type="cron",
                        started_at=at, ended_at=at, details={"exit_code": exit_code})


def test_a_cron_job_mapped_to_the_file_it_writes_updates_the_dataset_when_it_succeeds(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "datasets.yaml").write_text(dedent("""
        datasets:
          - namespace: file://db1
            name: /exports/orders.csv
            assets: [{system: cron/db1, key: export}]
    """))
    monkeypatch.setenv("INTERLOCK_DATASETS", str(tmp_path / "datasets.yaml"))
    ops.register(dedent("""
        id: load-export
        namespace: tests.data
        inputs: {code: {type: integer}}
        triggers:
          - after: {dataset: "file://db1/exports/orders.csv"}
            inputs: {code: "{{ trigger.metadata.exit_code }}"}
        nodes:
          step: {uses: noop}
    """).lstrip())
    intake.apply("cron", _cron_run("r-failed", NodeState.FAILED, 3), dispatcher=embedded,
                 origin="test")
    intake.apply("cron", _cron_run("r-ok", NodeState.SUCCEEDED, 0), dispatcher=embedded,
                 origin="test")
    intake.apply("cron", _cron_run("r-ok", NodeState.SUCCEEDED, 0), dispatcher=embedded,
                 origin="test")  # reported twice: one update
    [run_id] = _wait_runs("load-export", 1)
    detail = wait_run(run_id)
    assert detail.inputs == {"code": 0} and detail.trigger["system"] == "cron/db1"
    time.sleep(0.5)
    assert len(_runs_of("load-export")) == 1


def test_what_a_foreign_run_started_by_a_node_wrote_is_that_nodes_update(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `uses: dagster` node that `produces:` the asset's dataset: the Dagster run's own
    materialization is not a second update; one it does not declare is an update that
    never starts the node's own flow."""
    (tmp_path / "datasets.yaml").write_text(dedent(f"""
        datasets:
          - namespace: "{LAKE}"
            name: orders
            assets: [{{system: dagster/test, key: orders}}]
    """))
    monkeypatch.setenv("INTERLOCK_DATASETS", str(tmp_path / "datasets.yaml"))
    _producer("writer", "orders")
    ops.register(dedent(f"""
        id: on-orders
        namespace: tests.data
        triggers: [{{after: {{dataset: "{LAKE}/orders"}}}}]
        nodes: {{step: {{uses: noop}}}}
    """).lstrip())
    ops.register(dedent("""
        id: on-side
        namespace: tests.data
        triggers: [{after: {dataset: dagster/test/side}}]
        nodes: {step: {uses: noop}}
    """).lstrip())
    _start("writer", embedded)
    _wait_runs("on-orders", 1)
    [writer] = _runs_of("writer")
    with session_scope() as session:  # as if its node had launched Dagster run `dr-1`
        session.execute(update(Attempt).where(Attempt.run_id == writer).values(
            external_id="dr-1", handle={"kind": "dagster", "external_id": "dr-1",
                                        "system": "dagster/test"}))
    assets.take([AssetEvent(system="dagster/test", key=key, ref=f"m:{key}", run_id="dr-1",
                            at=datetime.now(UTC), job_id="orders_job")
                 for key in ("orders", "side")], origin="test", dispatcher=embedded)
    [side] = _wait_runs("on-side", 1)
    time.sleep(0.5)
    assert len(_runs_of("on-orders")) == 1  # not fired a second time by the echo
    assert ops.get_run(side).trace_id == ops.get_run(writer).trace_id
    with session_scope() as session:
        assert session.scalar(select(DatasetUpdate.system).where(
            DatasetUpdate.dataset == "dagster/test/side")) == "dagster/test"
