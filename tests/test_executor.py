"""The executor's races, driven by hand: twin deliveries and cancels during a submit."""

from __future__ import annotations

import threading
from pathlib import Path

from interlock.dispatch import executor
from interlock.dispatch.controller import advance
from interlock.operations import runs as ops
from interlock.states import NodeState
from interlock.store.outbox import Work
from interlock.store.tables import TaskKind
from interlock.testing import ScriptedAdapter, Step
from tests.helpers import write_flow

FLOW = """
id: races
namespace: tests.executor
nodes:
  job: {uses: scripted}
"""


class Recorder:
    """A dispatcher that only remembers what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Work] = []

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        self.sent.append(work)

    def send_polls(self, batch: object) -> None:
        return None


def _queued_attempt(tmp_path: Path, dispatcher: Recorder) -> tuple[str, int]:
    flow, _ = ops.register(write_flow(tmp_path, FLOW).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=dispatcher)
    advance(run_id, dispatcher=dispatcher)
    (execute,) = [w for w in dispatcher.sent if w.kind is TaskKind.EXECUTE]
    assert execute.attempt_id is not None
    return run_id, execute.attempt_id


def test_twin_deliveries_start_one_job_and_cancel_nothing(store_url: str, tmp_path: Path) -> None:
    adapter = ScriptedAdapter({"job": [Step.running()]})
    dispatcher = Recorder()
    with adapter.installed():
        run_id, attempt_id = _queued_attempt(tmp_path, dispatcher)
        barrier = threading.Barrier(2)

        def deliver() -> None:
            barrier.wait()
            executor.execute(attempt_id, dispatcher=dispatcher)

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    (node,) = ops.get_run(run_id).nodes
    assert node.state is NodeState.RUNNING
    assert node.attempts[0].state is NodeState.RUNNING
    assert sum(adapter.starts.values()) == 1
    assert adapter.cancelled == []


def test_cancel_during_submit_stops_the_job_just_started(store_url: str, tmp_path: Path) -> None:
    dispatcher = Recorder()
    adapter = ScriptedAdapter({"job": [Step.running()]})
    original_submit = adapter.submit

    def submit_while_cancelled(job, *, key):  # type: ignore[no-untyped-def]
        # The run is cancelled while the foreign system is accepting the job.
        ops.cancel_run(run_id, dispatcher=dispatcher)
        advance(run_id, dispatcher=dispatcher)
        return original_submit(job, key=key)

    adapter.submit = submit_while_cancelled  # type: ignore[method-assign]
    with adapter.installed():
        run_id, attempt_id = _queued_attempt(tmp_path, dispatcher)
        executor.execute(attempt_id, dispatcher=dispatcher)
    detail = ops.get_run(run_id)
    assert detail.state.value == "cancelled"
    assert detail.nodes[0].attempts[0].state is NodeState.CANCELLED
    assert adapter.cancelled == [detail.nodes[0].attempts[0].key]
