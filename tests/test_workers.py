"""Integration: real Redis, two real `interlock worker` processes, SQLite and PostgreSQL.

The crash test SIGKILLs the worker that is running a script node, 20 times, and checks
that every run finishes and that each script ran exactly once per node per run.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from interlock.dispatch.celery_app import CeleryDispatcher, make_app
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.tables import Attempt
from tests.helpers import wait_run, write_flow
from tests.workers import Worker, WorkerPool, worker_pool

pytestmark = pytest.mark.integration

FAN_IN = """
id: fan-in
namespace: tests.workers
inputs: {n: {type: integer, required: true}}
nodes:
  start:
    uses: script
    with: {command: "echo n={{ inputs.n }} > $INTERLOCK_OUTPUT"}
  double:
    uses: script
    needs: [start]
    with: {command: "echo v=$(( {{ nodes.start.outputs.n }} * 2 )) > $INTERLOCK_OUTPUT"}
  triple:
    uses: script
    needs: [start]
    with: {command: "echo v=$(( {{ nodes.start.outputs.n }} * 3 )) > $INTERLOCK_OUTPUT"}
  square:
    uses: noop
    needs: [start]
    with: {v: "{{ nodes.start.outputs.n | int ** 2 }}"}
  total:
    uses: script
    needs: [double, triple, square]
    with:
      command: >-
        printf '{"sum": %d, "trace": "%s"}' $(( {{ nodes.double.outputs.v }}
        + {{ nodes.triple.outputs.v }} + {{ nodes.square.outputs.v }} )) "$TRACEPARENT"
        > $INTERLOCK_OUTPUT
"""

APPEND = """
id: append-once
namespace: tests.workers
nodes:
  first:
    uses: script
    with: {{command: "echo \\"$INTERLOCK_RUN_ID $INTERLOCK_NODE_ID\\" >> {ledger}; sleep 1.2"}}
  second:
    uses: script
    needs: [first]
    with: {{command: "echo \\"$INTERLOCK_RUN_ID $INTERLOCK_NODE_ID\\" >> {ledger}; sleep 0.6"}}
"""


@pytest.fixture
def pool(store_url: str, tmp_path: Path) -> Iterator[WorkerPool]:
    """Two workers on a test Redis database and queue of their own, sharing the test store."""
    with worker_pool(store_url, tmp_path) as workers:
        yield workers


@pytest.fixture
def dispatcher(pool: WorkerPool) -> CeleryDispatcher:
    return CeleryDispatcher(make_app(pool.env["INTERLOCK_BROKER_URL"]))


def test_fan_out_fan_in_on_two_workers(pool: WorkerPool, dispatcher: CeleryDispatcher,
                                       tmp_path: Path) -> None:
    flow, _ = ops.register(write_flow(tmp_path, FAN_IN).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={"n": 4},
                           dispatcher=dispatcher)
    detail = wait_run(run_id, timeout=90)
    nodes = {n.id: n for n in detail.nodes}
    assert detail.state is RunState.SUCCEEDED, {n: v.error for n, v in nodes.items()}
    assert nodes["double"].outputs == {"v": 8}  # `v=8` lines are typed
    assert nodes["triple"].outputs == {"v": 12}
    assert nodes["total"].outputs["sum"] == 8 + 12 + 16
    assert nodes["total"].outputs["trace"].startswith(f"00-{detail.trace_id}-")
    submitters = {a.key: a for n in detail.nodes for a in n.attempts}
    assert len(submitters) == 5


def test_worker_sigkill_mid_node_loses_nothing_and_runs_nothing_twice(
        pool: WorkerPool, dispatcher: CeleryDispatcher, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    flow, _ = ops.register(write_flow(tmp_path, APPEND.format(ledger=ledger)).read_text())
    rng = random.Random(20261124)
    run_ids: list[str] = []
    owner_kills = 0
    for _trial in range(20):
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                               dispatcher=dispatcher)
        run_ids.append(run_id)
        time.sleep(rng.uniform(0.2, 1.5))
        owner = _worker_running_a_script(pool, run_id)
        owner_kills += owner is not None
        (owner or rng.choice(pool.alive())).kill()
        pool.start().wait_ready()
    # Most kills must hit the worker that submitted a script still running, or the test
    # would prove nothing about crashes mid-node.
    assert owner_kills >= 15, owner_kills
    finished = [wait_run(run_id, timeout=120) for run_id in run_ids]

    assert [d.state for d in finished] == [RunState.SUCCEEDED] * 20, \
        [(d.id, {n.id: (n.state.value, n.error) for n in d.nodes}) for d in finished
         if d.state is not RunState.SUCCEEDED]
    lines = Counter(ledger.read_text().splitlines())
    expected = {f"{run_id} {node}" for run_id in run_ids for node in ("first", "second")}
    assert set(lines) == expected
    assert all(count == 1 for count in lines.values()), {k: c for k, c in lines.items() if c > 1}
    for detail in finished:
        for node in detail.nodes:
            assert node.state is NodeState.SUCCEEDED
            assert [a.number for a in node.attempts] == [1]


def _worker_running_a_script(pool: WorkerPool, run_id: str) -> Worker | None:
    """The live worker that submitted one of this run's attempts still running, if any."""
    pids = {w.pid: w for w in pool.alive()}
    with session_scope() as session:
        owners = session.scalars(select(Attempt.worker).where(
            Attempt.run_id == run_id, Attempt.state == NodeState.RUNNING.value,
            Attempt.worker.is_not(None))).all()
    for owner in owners:
        pid = int(owner.rsplit(":", 1)[1])
        if pid in pids:
            return pids[pid]
    return None
