"""What a poll that raises does to the attempts it was observing.

`Transient` keeps them in flight; `Rejected` fails them with its message; anything else is an
adapter bug and fails them with the exception named (docs/adapters.md, "Errors"). Before the
fix the executor caught only `Transient` in the poll path, so a poll raising RuntimeError
left the attempt RUNNING for ever, polled and raising again on every tick.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from interlock.adapters.contract import Handle, Observation
from interlock.dispatch import executor
from interlock.dispatch.controller import advance
from interlock.errors import Rejected
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.tables import TaskKind
from interlock.testing import ScriptedAdapter, Step
from tests.helpers import write_flow
from tests.test_executor import Recorder

FLOW = """
id: poll-errors
namespace: tests.poll
nodes:
  a: {uses: flaky}
  b: {uses: flaky}
"""


class FlakyPoller(ScriptedAdapter):
    """Starts jobs like ScriptedAdapter; its poll raises `error` for the handles of the
    nodes named in `broken` (all of them if `broken` is empty)."""

    kind: ClassVar[str] = "flaky"

    def __init__(self, error: Exception, broken: frozenset[str] = frozenset()):
        super().__init__({}, default=[Step.running(), Step.succeeded()])
        self.error, self.broken = error, broken

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        if not self.broken or any(h.data["node_id"] in self.broken for h in handles):
            raise self.error
        return super().poll(handles)


def _run_until_polled(tmp_path: Path, adapter: FlakyPoller) -> str:
    """Starts the flow, submits both attempts, then polls them as the
    reconciler would until neither is running (or 10 s pass)."""
    dispatcher = Recorder()
    with adapter.installed():  # as `uses: flaky`, for the flow's validation and the executor
        flow, _ = ops.register(write_flow(tmp_path, FLOW).read_text())
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                               dispatcher=dispatcher)
        advance(run_id, dispatcher=dispatcher)
        ids = [w.attempt_id for w in dispatcher.sent
               if w.kind is TaskKind.EXECUTE and w.attempt_id is not None]
        for attempt_id in ids:
            executor.execute(attempt_id, dispatcher=dispatcher)
        assert {n.state for n in ops.get_run(run_id).nodes} == {NodeState.RUNNING}
        deadline = time.monotonic() + 10
        while NodeState.RUNNING in {n.state for n in ops.get_run(run_id).nodes}:
            assert time.monotonic() < deadline, "attempts still running after 10 s of polls"
            executor.poll(ids, dispatcher=dispatcher)  # takes only the attempts that are due
            time.sleep(0.05)
    return run_id


def test_a_poll_raising_runtime_error_fails_the_attempt_naming_it(
        store_url: str, tmp_path: Path) -> None:
    run_id = _run_until_polled(tmp_path, FlakyPoller(RuntimeError("socket closed twice")))
    detail = ops.get_run(run_id)
    assert detail.state is RunState.FAILED  # the run finishes
    for node in detail.nodes:
        assert node.state is NodeState.FAILED
        (attempt,) = node.attempts
        assert attempt.state is NodeState.FAILED
        assert attempt.error is not None
        assert "RuntimeError" in attempt.error and "socket closed twice" in attempt.error


def test_a_poll_rejected_fails_the_attempt_with_its_message(
        store_url: str, tmp_path: Path) -> None:
    run_id = _run_until_polled(tmp_path, FlakyPoller(Rejected("job 7 was purged")))
    detail = ops.get_run(run_id)
    assert detail.state is RunState.FAILED
    for node in detail.nodes:
        assert node.attempts[0].state is NodeState.FAILED
        assert node.attempts[0].error == "job 7 was purged"


def test_one_handle_breaking_the_poll_does_not_fail_the_others(
        store_url: str, tmp_path: Path) -> None:
    """The poll is batched: a bug that only one handle triggers fails only its attempt."""
    adapter = FlakyPoller(KeyError("state"), broken=frozenset({"a"}))
    run_id = _run_until_polled(tmp_path, adapter)
    nodes = {n.id: n for n in ops.get_run(run_id).nodes}
    assert nodes["a"].state is NodeState.FAILED
    assert nodes["a"].attempts[0].error is not None
    assert "KeyError" in nodes["a"].attempts[0].error
    assert nodes["b"].state is NodeState.SUCCEEDED
