"""Concurrency limits under a race: two real `interlock worker` processes on Redis, the real
PostgreSQL, 50 runs started from five threads at once (the limited flow's one after the
other from one of them), racing for `limit: 2` on one flow and `concurrency: 3` on one
system. A sampler reads the store every 20 ms throughout: the
in-flight counts never exceed the limits, every run finishes, and the queued flow's runs
start in the order they were started (runs released by the same freed slots at once may
start in either order among themselves)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from interlock.dispatch.celery_app import CeleryDispatcher, make_app
from interlock.operations import runs as ops
from interlock.spec.models import Flow
from interlock.states import NodeState, RunState
from interlock.store.db import dispose_all
from tests.helpers import wait_run, write_flow
from tests.test_concurrency import counts, sampling, started_order
from tests.workers import WorkerPool, worker_pool

pytestmark = pytest.mark.integration

LIMITED = """
id: limited
namespace: tests.race
concurrency: {limit: 2}
nodes:
  work: {uses: script, with: {system: script/batch, command: "sleep 0.2"}}
"""

WIDE = """
id: wide
namespace: tests.race
nodes:
  a: {uses: script, with: {system: script/batch, command: "sleep 0.2"}}
  b: {uses: script, with: {system: script/batch, command: "sleep 0.2"}}
  c: {uses: script, with: {system: script/batch, command: "sleep 0.2"}}
"""


@pytest.fixture
def pool(pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[WorkerPool]:
    systems = tmp_path / "systems.yaml"
    systems.write_text("systems:\n  script/batch:\n    concurrency: 3\n")
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", pg_schema_url)
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    with worker_pool(pg_schema_url, tmp_path,
                     extra_env={"INTERLOCK_SYSTEMS": str(systems)}) as workers:
        yield workers
    dispose_all()


def test_fifty_runs_race_for_a_flow_limit_and_a_system_limit(pool: WorkerPool,
                                                              tmp_path: Path) -> None:
    dispatcher = CeleryDispatcher(make_app(pool.env["INTERLOCK_BROKER_URL"]))
    limited, _ = ops.register(write_flow(tmp_path, LIMITED, "limited.yaml").read_text())
    wide, _ = ops.register(write_flow(tmp_path, WIDE, "wide.yaml").read_text())
    flows = [limited if i % 5 < 3 else wide for i in range(50)]  # 30 limited, 20 wide

    def start(flow: Flow) -> str:
        return ops.start_run(namespace="tests.race", flow_id=flow.id, inputs={},
                             dispatcher=dispatcher)

    def start_in_order(flows: list[Flow]) -> list[str]:
        return [start(flow) for flow in flows]

    # The limited flow's runs are started one after the other (their order is defined), from
    # one thread, while four threads race to start the others.
    with sampling(lambda: counts("tests.race", "limited", "script/batch")) as seen:
        with ThreadPoolExecutor(max_workers=5) as threads:
            in_order = threads.submit(start_in_order, [f for f in flows if f is limited])
            racing = list(threads.map(start, [f for f in flows if f is wide]))
            limited_ids = in_order.result()
        run_ids = limited_ids + racing
        details = {r: wait_run(r, timeout=240) for r in run_ids}
    print(f"\n{len(seen)} samples; most in flight: limited runs "
          f"{max(r for r, _ in seen)}, attempts on script/batch {max(a for _, a in seen)}")
    assert {d.state for d in details.values()} == {RunState.SUCCEEDED}, {
        r: (d.state, d.reason) for r, d in details.items() if d.state is not RunState.SUCCEEDED}
    assert len(seen) > 50
    assert max(r for r, _ in seen) == 2
    assert max(a for _, a in seen) == 3
    # In order: a run never starts before one started earlier, except one of the runs a
    # freed slot released together with it (fewer than `limit` places ahead of it).
    started = started_order(limited_ids)
    overtaken = [(i, j) for i, first in enumerate(limited_ids)
                 for j, later in enumerate(limited_ids)
                 if j > i and started.index(later) < started.index(first)]
    print(f"overtaken in the same release: {overtaken}")
    assert all(j - i < 2 for i, j in overtaken), overtaken
    slot_waits = sum(1 for r in run_ids for e in ops.run_events(r)
                     if e.to_state == NodeState.SLOT_WAIT.value)
    assert slot_waits > 0  # the system limit really held nodes back
    assert os.environ.get("INTERLOCK_BROKER_URL")  # the workers, not an embedded loop, ran it
