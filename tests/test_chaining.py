"""ChainingDispatcher: a worker runs the next submit itself; everything else goes out."""

from __future__ import annotations

from pathlib import Path

import pytest
from interlock_noop import NoopAdapter

from interlock.dispatch.chaining import ChainingDispatcher
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import TaskKind
from tests.helpers import write_flow

CHAIN = """
id: chain
namespace: tests.chaining
nodes:
  a: {uses: noop, with: {v: 1}}
  b: {uses: noop, needs: [a], with: {v: "{{ nodes.a.outputs.v + 1 }}"}}
  c: {uses: noop, needs: [b], with: {v: "{{ nodes.b.outputs.v + 1 }}"}}
  d: {uses: noop, needs: [c], with: {v: "{{ nodes.c.outputs.v + 1 }}"}}
"""
FAN = """
id: fan
namespace: tests.chaining
nodes:
  root: {uses: noop}
  left: {uses: noop, needs: [root]}
  right: {uses: noop, needs: [root]}
"""


class Broker:
    """Stands in for Celery: records what would have gone over the wire."""

    def __init__(self) -> None:
        self.sent: list[tuple[Work, float]] = []
        self.polls: list[PollBatch] = []

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        self.sent.append((work, countdown))

    def send_polls(self, batch: PollBatch) -> None:
        self.polls.append(batch)


def _start(tmp_path: Path, text: str, broker: Broker) -> tuple[str, Work]:
    """Start a run of nodes that take the long way (as nodes of any adapter but `noop` do:
    `noop` settles in the start's own transaction, tests/test_hot_path.py); the run's id
    and the one piece of work its start sent: its first node's EXECUTE."""
    flow, _ = ops.register(write_flow(tmp_path, text).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={}, dispatcher=broker)
    (first, _), = broker.sent
    assert first.kind is TaskKind.EXECUTE
    broker.sent.clear()
    return run_id, first


@pytest.fixture(autouse=True)
def _the_long_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NoopAdapter, "settles_in_submit", False)


def test_a_chain_of_nodes_runs_in_one_task(store_url: str, tmp_path: Path) -> None:
    broker = Broker()
    run_id, first = _start(tmp_path, CHAIN, broker)
    ChainingDispatcher(broker).run(first)
    detail = ops.get_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    assert detail.nodes[-1].outputs == {"v": 4}
    assert broker.sent == []  # no broker round trip after the start's


def test_fan_out_keeps_one_branch_and_sends_the_other(store_url: str, tmp_path: Path) -> None:
    broker = Broker()
    run_id, first = _start(tmp_path, FAN, broker)
    ChainingDispatcher(broker).run(first)
    states = {n.id: n.state for n in ops.get_run(run_id).nodes}
    assert states["root"] is NodeState.SUCCEEDED
    sent = [w for w, _ in broker.sent]
    assert [w.kind for w in sent] == [TaskKind.EXECUTE]  # one branch went to the broker
    assert sorted(s for s in states.values()) == sorted(
        [NodeState.SUCCEEDED, NodeState.SUCCEEDED, NodeState.QUEUED])


def test_chain_limit_and_countdowns_go_to_the_broker() -> None:
    broker = Broker()
    chaining = ChainingDispatcher(broker, limit=0)
    work = Work(TaskKind.EXECUTE, "run", 1)
    chaining.send(work)
    chaining.send(Work(TaskKind.EXECUTE, "run", 2), countdown=5.0)
    assert list(chaining.local) == []
    assert broker.sent == [(work, 0.0), (Work(TaskKind.EXECUTE, "run", 2), 5.0)]
