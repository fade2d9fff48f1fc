"""`after: {flow: ...}`: one Interlock flow finishing starts another, in the transaction that
finishes it; state words, lists, conditions and self-triggering."""

from __future__ import annotations

import time
from textwrap import dedent

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.store.runs import RunFilter
from tests.helpers import wait_run

UPSTREAM = """
id: upstream
namespace: tests.after
inputs: {fail: {type: boolean, default: false}}
nodes:
  work: {uses: script, with: {command: "test {{ inputs.fail }} = False"}}
"""


def _flow(flow_id: str, after: str) -> None:
    ops.register(dedent(f"""
        id: {flow_id}
        namespace: tests.after
        triggers:
          - after: {after}
        nodes:
          step: {{uses: noop}}
    """).lstrip())


def _runs_of(flow_id: str) -> list[str]:
    return [r.id for r in ops.list_runs(filters=RunFilter(flow_id=flow_id)).runs]


def _settle(embedded: EmbeddedDispatcher, flows: list[str], count: int) -> None:
    deadline = time.monotonic() + 30
    while sum(len(_runs_of(f)) for f in flows) < count:
        assert time.monotonic() < deadline, {f: _runs_of(f) for f in flows}
        time.sleep(0.05)
    for flow in flows:
        for run_id in _runs_of(flow):
            wait_run(run_id)


def test_a_finished_flow_starts_the_flows_waiting_for_its_state(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(dedent(UPSTREAM).lstrip())
    _flow("on-success", "{flow: upstream, state: success}")
    _flow("on-failure", "{flow: tests.after/upstream, state: failed}")
    _flow("on-either", "{flow: upstream, state: [succeeded, failed]}")
    _flow("on-manual", "{flow: upstream, state: any, if: \"trigger.run_type == 'manual'\"}")
    _flow("elsewhere", "{flow: other.namespace/upstream, state: any}")
    waiting = ["on-success", "on-failure", "on-either", "on-manual", "elsewhere"]

    ok = ops.start_run(namespace="tests.after", flow_id="upstream", inputs={},
                       dispatcher=embedded)
    assert wait_run(ok).state.value == "succeeded"
    _settle(embedded, waiting, 3)
    assert {f: len(_runs_of(f)) for f in waiting} == {
        "on-success": 1, "on-failure": 0, "on-either": 1, "on-manual": 1, "elsewhere": 0}
    trigger = ops.get_run(_runs_of("on-success")[0]).trigger
    assert trigger == {"type": "after", "system": "interlock", "job_id": "tests.after/upstream",
                       "external_id": ok, "state": "succeeded", "remote_status": "succeeded",
                       "run_type": "manual"}

    bad = ops.start_run(namespace="tests.after", flow_id="upstream", inputs={"fail": True},
                        dispatcher=embedded)
    assert wait_run(bad).state.value == "failed"
    _settle(embedded, waiting, 6)
    assert {f: len(_runs_of(f)) for f in waiting} == {
        "on-success": 1, "on-failure": 1, "on-either": 2, "on-manual": 2, "elsewhere": 0}


def test_chains_run_through_and_a_flow_never_triggers_itself(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(dedent(UPSTREAM).lstrip())
    _flow("second", "{flow: upstream}")
    _flow("third", "{flow: second}")
    _flow("loop", "{flow: loop, state: any}")
    first = ops.start_run(namespace="tests.after", flow_id="upstream", inputs={},
                          dispatcher=embedded)
    wait_run(first)
    _settle(embedded, ["second", "third"], 2)
    third = ops.get_run(_runs_of("third")[0])
    assert third.state.value == "succeeded"
    assert third.trigger["external_id"] == _runs_of("second")[0]
    looped = ops.start_run(namespace="tests.after", flow_id="loop", inputs={},
                           dispatcher=embedded)
    wait_run(looped)
    time.sleep(0.5)
    assert _runs_of("loop") == [looped]


def test_a_bad_condition_refuses_the_trigger_and_is_audited(
        embedded: EmbeddedDispatcher) -> None:
    from sqlalchemy import select

    from interlock.store import audit
    from interlock.store.db import session_scope
    from interlock.store.tables import AuditRecord
    ops.register(dedent(UPSTREAM).lstrip())
    _flow("broken", "{flow: upstream, if: \"trigger.nope.deeper == 1\"}")
    wait_run(ops.start_run(namespace="tests.after", flow_id="upstream", inputs={},
                           dispatcher=embedded))
    time.sleep(0.3)
    assert _runs_of("broken") == []
    with session_scope() as session:
        refused = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_REFUSED.value)).all()
    assert len(refused) == 1 and "after.if" in refused[0].after["problems"][0]
