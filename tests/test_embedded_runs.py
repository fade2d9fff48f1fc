"""Runs end to end on the embedded dispatcher, against SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from tests.helpers import wait_run, write_flow

FAN = """
id: fan
namespace: tests.embedded
inputs: {n: {type: integer, required: true}}
nodes:
  a: {uses: noop, with: {v: "{{ inputs.n }}"}}
  b: {uses: noop, needs: [a], with: {w: "{{ nodes.a.outputs.v * 2 }}"}}
  c: {uses: noop, needs: [a], with: {w: "{{ nodes.a.outputs.v * 3 }}"}}
  d: {uses: noop, needs: [b, c], with: {sum: "{{ nodes.b.outputs.w + nodes.c.outputs.w }}"}}
  e: {uses: noop, needs: [d], if: "nodes.d.outputs.sum > 1000", with: {}}
"""


def test_fan_out_fan_in_passes_outputs(embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    flow, _ = ops.register(write_flow(tmp_path, FAN).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={"n": 5},
                           dispatcher=embedded)
    detail = wait_run(run_id)
    nodes = {n.id: n for n in detail.nodes}
    assert detail.state is RunState.SUCCEEDED
    assert nodes["d"].outputs == {"sum": 25}
    assert nodes["e"].state is NodeState.SKIPPED
    assert nodes["e"].reason == "`if:` is false"
    events = ops.run_events(run_id)
    assert [e.to_state for e in events if e.entity == "run"] == ["pending", "running", "succeeded"]
    assert all(e.actor for e in events)


README_IF = """
id: readme-if
namespace: tests.embedded
inputs: {count: {type: integer, required: true}}
nodes:
  extract:
    uses: script
    with: {command: "echo count={{ inputs.count }} >> $INTERLOCK_OUTPUT"}
  report:
    uses: noop
    needs: [extract]
    if: "{{ nodes.extract.outputs.count > 0 }}"
    with: {count: "{{ nodes.extract.outputs.count }}"}
"""


def test_readme_if_on_a_key_value_count(embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    """The README's flow: a script writes `count=N`, the next node runs only if N > 0."""
    flow, _ = ops.register(write_flow(tmp_path, README_IF).read_text())
    outcomes = {}
    for count in (3, 0):
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                               inputs={"count": count}, dispatcher=embedded)
        detail = wait_run(run_id)
        nodes = {n.id: n for n in detail.nodes}
        assert detail.state is RunState.SUCCEEDED, nodes["report"].error
        assert nodes["extract"].outputs == {"count": count}
        outcomes[count] = (nodes["report"].state, nodes["report"].outputs)
    assert outcomes == {3: (NodeState.SUCCEEDED, {"count": 3}), 0: (NodeState.SKIPPED, {})}


def test_failed_script_then_retry_keeps_succeeded_nodes(embedded: EmbeddedDispatcher,
                                                        tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    flow_text = f"""
    id: flaky
    namespace: tests.embedded
    nodes:
      first: {{uses: noop, with: {{ok: 1}}}}
      second:
        uses: script
        needs: [first]
        with: {{command: "test -f {marker} && echo fixed"}}
      third: {{uses: noop, needs: [second], with: {{}}}}
    """
    flow, _ = ops.register(write_flow(tmp_path, flow_text).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=embedded)
    failed = wait_run(run_id)
    states = {n.id: n.state for n in failed.nodes}
    assert failed.state is RunState.FAILED
    assert states == {"first": NodeState.SUCCEEDED, "second": NodeState.FAILED,
                      "third": NodeState.SKIPPED}
    assert "exit code 1" in (next(n for n in failed.nodes if n.id == "second").error or "")

    marker.touch()
    assert ops.retry_run(run_id, dispatcher=embedded) == ["second", "third"]
    done = wait_run(run_id)
    nodes = {n.id: n for n in done.nodes}
    assert done.state is RunState.SUCCEEDED
    assert len(nodes["first"].attempts) == 1  # kept, not re-run
    assert [a.number for a in nodes["second"].attempts] == [1, 2]
    assert len({a.key for a in nodes["second"].attempts}) == 2
