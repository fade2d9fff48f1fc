"""The engine end to end with `interlock.testing.ScriptedAdapter` (embedded dispatch, both stores)."""

from __future__ import annotations

import time
from pathlib import Path

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.testing import ScriptedAdapter, Step
from tests.helpers import wait_run, write_flow

FLOW = """
id: scripted
namespace: tests.scripted
nodes:
  extract: {uses: scripted, retry: {attempts: 3, backoff: 100ms}}
  load: {uses: scripted, needs: [extract], with: {rows: "{{ nodes.extract.outputs.rows }}"}}
  slow: {uses: scripted, needs: [extract], timeout: 500ms}
"""


def _run(tmp_path: Path, embedded: EmbeddedDispatcher) -> str:
    flow, _ = ops.register(write_flow(tmp_path, FLOW).read_text())
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                         dispatcher=embedded)


def test_transient_submit_failures_poll_retry_and_timeout(embedded: EmbeddedDispatcher,
                                                          tmp_path: Path) -> None:
    adapter = ScriptedAdapter({
        "extract": [Step.transient("503"), Step.running(), Step.failed("flaky")],
        "load": [Step.running(), Step.running(), Step.succeeded(loaded=True)],
        "slow": [Step.running()],
    })
    with adapter.installed():
        detail = wait_run(_run(tmp_path, embedded), timeout=60)
    nodes = {n.id: n for n in detail.nodes}
    # extract: every attempt fails after one poll; 3 attempts, then FAILED
    assert nodes["extract"].state is NodeState.FAILED
    assert [a.number for a in nodes["extract"].attempts] == [1, 2, 3]
    assert nodes["extract"].error == "flaky"
    assert nodes["load"].state is NodeState.SKIPPED
    assert detail.state is RunState.FAILED
    # the transient submit was retried with the same key, and started exactly once
    first_key = nodes["extract"].attempts[0].key
    assert adapter.submits[first_key] == 2
    assert adapter.starts[first_key] == 1


def test_outputs_flow_downstream_and_timeout_cancels(embedded: EmbeddedDispatcher,
                                                     tmp_path: Path) -> None:
    adapter = ScriptedAdapter({
        "extract": [Step.running(), Step.succeeded(rows=42)],
        "load": [Step.running(), Step.succeeded(loaded=True)],
        "slow": [Step.running()],  # never finishes: the 500ms timeout must stop it
    })
    with adapter.installed():
        detail = wait_run(_run(tmp_path, embedded), timeout=60)
    nodes = {n.id: n for n in detail.nodes}
    assert nodes["extract"].outputs == {"rows": 42}
    assert nodes["load"].state is NodeState.SUCCEEDED
    assert nodes["slow"].state is NodeState.TIMED_OUT
    assert nodes["slow"].attempts[-1].state is NodeState.TIMED_OUT
    assert detail.state is RunState.FAILED
    assert adapter.cancelled == [nodes["slow"].attempts[-1].key]
    assert all(count == 1 for count in adapter.starts.values())


def test_cancel_stops_running_attempts(embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    adapter = ScriptedAdapter({"extract": [Step.running()]})
    with adapter.installed():
        run_id = _run(tmp_path, embedded)
        for _ in range(200):
            if ops.get_run(run_id).nodes[0].state is NodeState.RUNNING:
                break
            time.sleep(0.02)
        ops.cancel_run(run_id, dispatcher=embedded)
        detail = wait_run(run_id, timeout=30)
    assert detail.state is RunState.CANCELLED
    assert {n.id: n.state for n in detail.nodes} == {
        "extract": NodeState.CANCELLED, "load": NodeState.CANCELLED, "slow": NodeState.CANCELLED}
    assert adapter.cancelled == [detail.nodes[0].attempts[0].key]
