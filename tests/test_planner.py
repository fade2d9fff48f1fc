"""The pure planner, rule by rule, with a fixed clock; then a simulation property test."""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

# `interlock.spec` first: importing `interlock.engine.*` first is a circular import (see
# test_engine_imports_on_its_own below).
import interlock.spec  # noqa: F401  isort: skip
from interlock.engine.planner import (
    CancelAttempt,
    CloseAttempt,
    Decision,
    Plan,
    SetNode,
    SetRun,
    Submit,
    plan,
)
from interlock.engine.snapshot import AttemptView, NodeView, RunView
from interlock.spec import parse_flow
from interlock.spec.graph import FlowGraph
from interlock.states import (
    NODE_IN_FLIGHT,
    NODE_TERMINAL,
    RUN_TERMINAL,
    NodeState,
    RunState,
    SkipCause,
    transition,
)

N = NodeState
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def secs(n: float) -> timedelta:
    return timedelta(seconds=n)


# --- helpers -----------------------------------------------------------------------------------


def graph_of(yaml_text: str) -> FlowGraph:
    return FlowGraph(parse_flow(yaml_text))


def att(number: int, state: NodeState, created: datetime = T0, finished: datetime | None = None,
        outputs: dict[str, Any] | None = None, error: str | None = None) -> AttemptView:
    return AttemptView(number=number, state=state, created_at=created, finished_at=finished,
                       outputs=outputs or {}, error=error)


def nv(state: NodeState = N.PENDING, *attempts: AttemptView, outputs: dict[str, Any] | None = None,
       retry_at: datetime | None = None) -> NodeView:
    return NodeView(state=state, attempts=tuple(attempts), retry_at=retry_at,
                    outputs=outputs or {})


def done(outputs: dict[str, Any] | None = None) -> NodeView:
    """A node that succeeded with one attempt."""
    out = outputs or {}
    return nv(N.SUCCEEDED, att(1, N.SUCCEEDED, finished=T0, outputs=out), outputs=out)


def run_of(graph: FlowGraph, state: RunState = RunState.RUNNING,
           inputs: dict[str, Any] | None = None, **nodes: NodeView) -> RunView:
    views = {nid: nodes.get(nid, NodeView()) for nid in graph.flow.nodes}
    assert set(nodes) <= set(views), "unknown node in test"
    return RunView(run_id="run-1", state=state, inputs=inputs or {}, trace_id="trace-1",
                   nodes=views)


def of_type(p: Plan, kind: type) -> list[Any]:
    return [d for d in p.decisions if isinstance(d, kind)]


def set_node(p: Plan, node_id: str) -> SetNode:
    found = [d for d in of_type(p, SetNode) if d.node_id == node_id]
    assert len(found) == 1, p.decisions
    return found[0]


def submitted(p: Plan) -> list[str]:
    return [d.node_id for d in of_type(p, Submit)]


def apply(run: RunView, decisions: list[Decision], now: datetime) -> RunView:
    """The run as the store would hold it once ``decisions`` land, checked by `transition()`."""
    nodes = dict(run.nodes)
    state = run.state
    for d in decisions:
        if isinstance(d, Submit):
            view = nodes[d.node_id]
            assert d.attempt == view.attempt_count + 1, (d, view)
            nodes[d.node_id] = replace(
                view, state=transition(view.state, N.QUEUED), retry_at=None,
                attempts=(*view.attempts, AttemptView(d.attempt, N.QUEUED, created_at=now)))
        elif isinstance(d, SetNode):
            view = nodes[d.node_id]
            nodes[d.node_id] = replace(
                view, state=transition(view.state, d.to), retry_at=d.retry_at,
                outputs=d.outputs if d.outputs is not None else view.outputs)
        elif isinstance(d, CloseAttempt):
            view = nodes[d.node_id]
            current = view.current
            assert current is not None and current.number == d.attempt, (d, view)
            closed = replace(current, state=transition(current.state, d.to), finished_at=now,
                             error=d.reason)
            nodes[d.node_id] = replace(view, attempts=(*view.attempts[:-1], closed))
        elif isinstance(d, CancelAttempt):
            current = nodes[d.node_id].current
            assert current is not None and current.number == d.attempt
            assert current.state in NODE_IN_FLIGHT, (d, current)
        elif isinstance(d, SetRun):
            state = transition(state, d.to)
        else:  # pragma: no cover
            raise AssertionError(f"unknown decision {d!r}")
    return replace(run, state=state, nodes=nodes)


def finish_attempt(run: RunView, node_id: str, state: NodeState, at: datetime,
                   outputs: dict[str, Any] | None = None, error: str | None = None) -> RunView:
    """The remote side reports the node's current attempt finished."""
    view = run.nodes[node_id]
    current = view.current
    assert current is not None
    closed = replace(current, state=transition(current.state, state), finished_at=at,
                     outputs=outputs or {}, error=error)
    nodes = dict(run.nodes)
    nodes[node_id] = replace(view, attempts=(*view.attempts[:-1], closed))
    return replace(run, nodes=nodes)


# --- 1. a new run ------------------------------------------------------------------------------

NEW_RUN = """
id: newrun
inputs:
  n: {type: integer}
  who: {type: string}
nodes:
  a:
    uses: noop
    with:
      count: "{{ inputs.n }}"
      label: "n={{ inputs.n }}"
      nested: {items: ["{{ inputs.who }}", 7, "plain"]}
  c:
    uses: noop
    with: {flag: "{{ inputs.n > 2 }}"}
  b:
    uses: noop
    needs: [a]
    with: {x: "{{ nodes.a.outputs.count }}"}
"""


def test_new_run_starts_running_and_submits_roots_only() -> None:
    g = graph_of(NEW_RUN)
    p = plan(g, run_of(g, RunState.PENDING, inputs={"n": 3, "who": "ada"}), T0)
    assert p.decisions[0] == SetRun(RunState.RUNNING, "planned")
    assert p.decisions[1:] == [
        Submit("a", 1, {"count": 3, "label": "n=3", "nested": {"items": ["ada", 7, "plain"]}}),
        Submit("c", 1, {"flag": True}),
    ]
    params = of_type(p, Submit)[0].params
    assert type(params["count"]) is int  # native type kept
    assert type(of_type(p, Submit)[1].params["flag"]) is bool
    assert "b" not in submitted(p)
    assert p.wake_at is None


def test_running_run_is_not_set_running_again() -> None:
    g = graph_of(NEW_RUN)
    p = plan(g, run_of(g, RunState.RUNNING, inputs={"n": 1, "who": "x"}), T0)
    assert not of_type(p, SetRun)
    assert submitted(p) == ["a", "c"]


def test_run_context_is_available_to_expressions() -> None:
    g = graph_of("""
id: ctx
nodes:
  a: {uses: noop, with: {rid: "{{ run.id }}", trace: "{{ run.trace_id }}"}}
""")
    p = plan(g, run_of(g, RunState.PENDING), T0)
    assert of_type(p, Submit) == [Submit("a", 1, {"rid": "run-1", "trace": "trace-1"})]


# --- 2. fan-out / fan-in -----------------------------------------------------------------------

DIAMOND = """
id: diamond
nodes:
  a: {uses: noop}
  b: {uses: noop, needs: [a]}
  c: {uses: noop, needs: [a]}
  d:
    uses: noop
    needs: [b, c]
    with: {from_b: "{{ nodes.b.outputs.v }}", from_c: "{{ nodes.c.outputs.v }}",
           both: "{{ nodes.b.outputs.v + nodes.c.outputs.v }}"}
"""


def test_fan_out_submits_both_branches() -> None:
    g = graph_of(DIAMOND)
    p = plan(g, run_of(g, a=done()), T0)
    assert of_type(p, Submit) == [Submit("b", 1, {}), Submit("c", 1, {})]
    assert not of_type(p, SetRun)


@pytest.mark.parametrize("c_state", [N.PENDING, N.QUEUED, N.RUNNING, N.RETRY_WAIT])
def test_fan_in_waits_for_every_upstream(c_state: NodeState) -> None:
    g = graph_of(DIAMOND)
    c_view = (nv(c_state) if c_state is N.PENDING
              else nv(c_state, att(1, N.RUNNING if c_state in NODE_IN_FLIGHT else N.FAILED),
                      retry_at=T0 + secs(60) if c_state is N.RETRY_WAIT else None))
    p = plan(g, run_of(g, a=done(), b=done({"v": 1}), c=c_view), T0)
    assert "d" not in submitted(p)
    assert not [d for d in p.decisions if getattr(d, "node_id", None) == "d"]
    assert not of_type(p, SetRun)


def test_fan_in_submits_with_both_outputs() -> None:
    g = graph_of(DIAMOND)
    p = plan(g, run_of(g, a=done(), b=done({"v": 2}), c=done({"v": 40})), T0)
    assert p.decisions == [Submit("d", 1, {"from_b": 2, "from_c": 40, "both": 42})]


# --- 3. same-pass chaining ---------------------------------------------------------------------

CHAIN = """
id: chain
nodes:
  a: {uses: noop}
  b: {uses: noop, needs: [a], with: {got: "{{ nodes.a.outputs.x }}"}}
  c: {uses: noop, needs: [b]}
"""


@pytest.mark.parametrize("node_state", [N.RUNNING, N.QUEUED])
def test_success_settles_and_starts_downstream_in_one_pass(node_state: NodeState) -> None:
    g = graph_of(CHAIN)
    a = nv(node_state, att(1, N.SUCCEEDED, finished=T0, outputs={"x": [1, 2]}))
    p = plan(g, run_of(g, a=a), T0)
    assert p.decisions == [
        SetNode("a", N.SUCCEEDED, "attempt 1 succeeded", outputs={"x": [1, 2]}),
        Submit("b", 1, {"got": [1, 2]}),
    ]  # c waits for b, which is only QUEUED now


def test_in_flight_attempt_without_timeout_does_nothing() -> None:
    g = graph_of(CHAIN)
    p = plan(g, run_of(g, a=nv(N.RUNNING, att(1, N.RUNNING))), T0 + secs(10**6))
    assert p.decisions == []
    assert p.wake_at is None


# --- 4. `if:` ----------------------------------------------------------------------------------

IF_FLOW = """
id: cond
inputs:
  n: {type: integer}
nodes:
  a: {uses: noop}
  gated:
    uses: noop
    needs: [a]
    if: "{{ nodes.a.outputs.score > 5 }}"
    with: {score: "{{ nodes.a.outputs.score }}"}
  after_gated: {uses: noop, needs: [gated]}
  bare:
    uses: noop
    needs: [a]
    if: "inputs.n == 3"
  after_all:
    uses: noop
    needs: [gated]
    trigger_rule: all_done
"""


def test_if_false_skips_and_skips_all_success_downstream_in_same_pass() -> None:
    g = graph_of(IF_FLOW)
    p = plan(g, run_of(g, inputs={"n": 4}, a=done({"score": 1})), T0)
    gated = set_node(p, "gated")
    assert gated.to is N.SKIPPED and "`if:`" in gated.reason
    after = set_node(p, "after_gated")
    assert after.to is N.SKIPPED and "gated" in after.reason and "skipped" in after.reason
    bare = set_node(p, "bare")
    assert bare.to is N.SKIPPED and "`if:`" in bare.reason
    assert [gated.skip_cause, after.skip_cause, bare.skip_cause] == [
        SkipCause.CONDITION, SkipCause.UPSTREAM, SkipCause.CONDITION]
    assert all(d.skip_cause is None for d in of_type(p, SetNode) if d.to is not N.SKIPPED)
    # all_done runs after a skipped upstream
    assert of_type(p, Submit) == [Submit("after_all", 1, {})]
    assert not of_type(p, SetRun)


def test_if_true_submits_and_bare_expression_works() -> None:
    g = graph_of(IF_FLOW)
    p = plan(g, run_of(g, inputs={"n": 3}, a=done({"score": 9})), T0)
    assert of_type(p, Submit) == [Submit("gated", 1, {"score": 9}), Submit("bare", 1, {})]
    assert not of_type(p, SetNode)


def test_if_skipped_nodes_let_the_run_succeed() -> None:
    g = graph_of(IF_FLOW)
    run = run_of(g, inputs={"n": 4}, a=done({"score": 1}))
    p1 = plan(g, run, T0)
    run = apply(run, p1.decisions, T0)
    run = finish_attempt(run, "after_all", N.SUCCEEDED, T0)
    p2 = plan(g, run, T0)
    assert p2.decisions == [SetNode("after_all", N.SUCCEEDED, "attempt 1 succeeded", outputs={}),
                            SetRun(RunState.SUCCEEDED, "every node succeeded or was skipped")]


@pytest.mark.parametrize(("condition", "needle"), [
    ("{{ inputs.n / 0 > 1 }}", "ZeroDivisionError"),
    ("inputs.n // 0", "ZeroDivisionError"),
    ("{{ nodes.a.outputs.missing_key }}", "missing_key"),
    ("nodes.a.outputs.missing_key == 1", "missing_key"),
])
def test_if_that_errors_fails_the_node(condition: str, needle: str) -> None:
    g = graph_of(f"""
id: badif
inputs:
  n: {{type: integer}}
nodes:
  a: {{uses: noop}}
  b: {{uses: noop, needs: [a], if: "{condition}"}}
  c: {{uses: noop, needs: [b]}}
""")
    p = plan(g, run_of(g, inputs={"n": 3}, a=done({"present": 1})), T0)
    b = set_node(p, "b")
    assert b.to is N.FAILED
    assert "`if:`" in b.reason
    assert b.error is not None and needle in b.error
    assert "b" not in submitted(p)
    c = set_node(p, "c")
    assert c.to is N.SKIPPED and "`b` failed" in c.reason
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: b")


# --- 5. failure ----------------------------------------------------------------------------------

FAIL_FLOW = """
id: fails
nodes:
  a: {uses: noop}
  b: {uses: noop, needs: [a]}
  c: {uses: noop, needs: [b]}
  x: {uses: noop}
"""


def test_failed_attempt_without_retries_fails_node_skips_downstream_fails_run() -> None:
    g = graph_of(FAIL_FLOW)
    a = nv(N.RUNNING, att(1, N.FAILED, finished=T0, error="exit code 2"))
    p = plan(g, run_of(g, a=a, x=done()), T0)
    assert p.decisions == [
        SetNode("a", N.FAILED, "attempt 1 failed", error="exit code 2"),
        SetNode("b", N.SKIPPED, "upstream `a` failed", skip_cause=SkipCause.UPSTREAM),
        SetNode("c", N.SKIPPED, "upstream `b` skipped", skip_cause=SkipCause.UPSTREAM),
        SetRun(RunState.FAILED, "failed: a"),
    ]
    assert p.wake_at is None


def test_run_failure_reason_lists_every_failed_node() -> None:
    g = graph_of(FAIL_FLOW)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.LOST, finished=T0, error="gone")),
                 x=nv(N.RUNNING, att(1, N.FAILED, finished=T0, error="bad")))
    p = plan(g, run, T0)
    assert set_node(p, "a").to is N.LOST  # LOST stays LOST, not FAILED
    assert set_node(p, "x").to is N.FAILED
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: a, x")


def test_run_waits_while_an_independent_node_is_still_running() -> None:
    g = graph_of(FAIL_FLOW)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.FAILED, finished=T0)),
                 x=nv(N.RUNNING, att(1, N.RUNNING)))
    p = plan(g, run, T0)
    assert [d.node_id for d in of_type(p, SetNode)] == ["a", "b", "c"]
    assert not of_type(p, SetRun)


def test_skip_reason_names_the_failed_upstream_among_several() -> None:
    g = graph_of("""
id: multi
nodes:
  ok: {uses: noop}
  bad: {uses: noop}
  down: {uses: noop, needs: [ok, bad]}
""")
    p = plan(g, run_of(g, ok=done(), bad=nv(N.FAILED, att(1, N.FAILED))), T0)
    down = set_node(p, "down")
    assert down.to is N.SKIPPED
    assert down.reason == "upstream `bad` failed"
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: bad")


# --- 6. trigger_rule -----------------------------------------------------------------------------


@pytest.mark.parametrize("upstream_state", [N.FAILED, N.TIMED_OUT, N.LOST, N.CANCELLED, N.SKIPPED])
def test_all_done_runs_after_any_terminal_upstream(upstream_state: NodeState) -> None:
    g = graph_of("""
id: alldone
nodes:
  a: {uses: noop}
  ok: {uses: noop}
  cleanup:
    uses: noop
    needs: [a, ok]
    trigger_rule: all_done
    with: {a_state: "{{ nodes.a.state }}", ok_out: "{{ nodes.ok.outputs.v }}"}
""")
    p = plan(g, run_of(g, a=nv(upstream_state), ok=done({"v": 5})), T0)
    assert p.decisions == [Submit("cleanup", 1, {"a_state": upstream_state.value, "ok_out": 5})]


def test_all_done_waits_for_unfinished_upstream() -> None:
    g = graph_of("""
id: alldone2
nodes:
  a: {uses: noop}
  cleanup: {uses: noop, needs: [a], trigger_rule: all_done}
""")
    p = plan(g, run_of(g, a=nv(N.RETRY_WAIT, att(1, N.FAILED), retry_at=T0 + secs(5))), T0)
    assert p.decisions == []
    assert p.wake_at == T0 + secs(5)


# --- 7. retry with backoff -------------------------------------------------------------------------

RETRY = """
id: retry
nodes:
  a:
    uses: noop
    with: {k: "v"}
    retry: {attempts: 3, backoff: 10s, factor: 2}
  b: {uses: noop, needs: [a]}
"""


def test_retry_schedule_through_every_attempt() -> None:
    g = graph_of(RETRY)
    t1 = T0 + secs(3)
    # attempt 1 fails at t1 -> RETRY_WAIT until t1 + 10s
    run = run_of(g, a=nv(N.RUNNING, att(1, N.FAILED, created=T0, finished=t1, error="e1")))
    p = plan(g, run, t1)
    assert p.decisions == [SetNode("a", N.RETRY_WAIT, "attempt 1 failed; retry 2 of 3",
                                   error="e1", retry_at=t1 + secs(10))]
    assert p.wake_at == t1 + secs(10)
    run = apply(run, p.decisions, t1)

    # before retry_at: nothing, but wake at retry_at
    p = plan(g, run, t1 + secs(9.999))
    assert p.decisions == []
    assert p.wake_at == t1 + secs(10)

    # at retry_at: attempt 2
    p = plan(g, run, t1 + secs(10))
    assert p.decisions == [Submit("a", 2, {"k": "v"})]
    assert p.wake_at is None
    run = apply(run, p.decisions, t1 + secs(10))

    # attempt 2 fails at t2 -> delay is now 20s
    t2 = t1 + secs(15)
    run = finish_attempt(run, "a", N.FAILED, t2, error="e2")
    p = plan(g, run, t2 + secs(1))
    assert p.decisions == [SetNode("a", N.RETRY_WAIT, "attempt 2 failed; retry 3 of 3",
                                   error="e2", retry_at=t2 + secs(20))]
    assert p.wake_at == t2 + secs(20)
    run = apply(run, p.decisions, t2 + secs(1))

    p = plan(g, run, t2 + secs(19))
    assert p.decisions == [] and p.wake_at == t2 + secs(20)
    p = plan(g, run, t2 + secs(25))  # late is fine
    assert p.decisions == [Submit("a", 3, {"k": "v"})]
    run = apply(run, p.decisions, t2 + secs(25))

    # attempt 3 fails -> node FAILED, no 4th attempt
    t3 = t2 + secs(30)
    run = finish_attempt(run, "a", N.FAILED, t3, error="e3")
    p = plan(g, run, t3)
    assert p.decisions == [
        SetNode("a", N.FAILED, "attempt 3 failed", error="e3"),
        SetNode("b", N.SKIPPED, "upstream `a` failed", skip_cause=SkipCause.UPSTREAM),
        SetRun(RunState.FAILED, "failed: a"),
    ]
    assert not of_type(p, Submit)
    assert p.wake_at is None


def test_retry_delay_counts_from_finish_time_or_now() -> None:
    g = graph_of(RETRY)
    # no finished_at: the delay counts from `now`
    run = run_of(g, a=nv(N.RUNNING, att(1, N.FAILED, finished=None)))
    p = plan(g, run, T0 + secs(100))
    assert set_node(p, "a").retry_at == T0 + secs(110)


def test_max_backoff_caps_the_delay() -> None:
    g = graph_of("""
id: capped
nodes:
  a:
    uses: noop
    retry: {attempts: 5, backoff: 10s, factor: 10, max_backoff: 30s}
""")
    expected = {1: 10, 2: 30, 3: 30, 4: 30}  # 10, min(100, 30), min(1000, 30), ...
    for number, delay in expected.items():
        earlier = tuple(att(i, N.FAILED, finished=T0) for i in range(1, number))
        run = run_of(g, a=nv(N.RUNNING, *earlier, att(number, N.FAILED, finished=T0)))
        p = plan(g, run, T0)
        a = set_node(p, "a")
        assert a.to is N.RETRY_WAIT, number
        assert a.retry_at == T0 + secs(delay), number
        assert p.wake_at == T0 + secs(delay)
    run = run_of(g, a=nv(N.RUNNING, *(att(i, N.FAILED, finished=T0) for i in range(1, 6))))
    assert set_node(plan(g, run, T0), "a").to is N.FAILED


def test_zero_backoff_retries_at_once() -> None:
    g = graph_of("""
id: quick
nodes:
  a: {uses: noop, retry: {attempts: 2}}
""")
    run = run_of(g, a=nv(N.RUNNING, att(1, N.FAILED, finished=T0)))
    p = plan(g, run, T0)
    assert set_node(p, "a").retry_at == T0
    run = apply(run, p.decisions, T0)
    assert plan(g, run, T0).decisions == [Submit("a", 2, {})]


@pytest.mark.parametrize("outcome", [N.LOST, N.TIMED_OUT, N.FAILED])
def test_lost_and_timed_out_attempts_are_retried(outcome: NodeState) -> None:
    g = graph_of(RETRY)
    run = run_of(g, a=nv(N.RUNNING, att(1, outcome, finished=T0, error="why")))
    p = plan(g, run, T0)
    assert p.decisions == [SetNode("a", N.RETRY_WAIT, f"attempt 1 {outcome.value}; retry 2 of 3",
                                   error="why", retry_at=T0 + secs(10))]


@pytest.mark.parametrize("outcome", [N.LOST, N.TIMED_OUT])
def test_last_lost_or_timed_out_attempt_keeps_its_state(outcome: NodeState) -> None:
    g = graph_of(RETRY)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.FAILED), att(2, N.FAILED),
                         att(3, outcome, finished=T0, error="why")))
    p = plan(g, run, T0)
    assert p.decisions[0] == SetNode("a", outcome, f"attempt 3 {outcome.value}", error="why")
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: a")


def test_cancelled_attempt_cancels_node_without_retry() -> None:
    g = graph_of(RETRY)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.CANCELLED, finished=T0, error="stopped by hand")))
    p = plan(g, run, T0)
    assert p.decisions == [
        SetNode("a", N.CANCELLED, "attempt 1 cancelled", error="stopped by hand"),
        SetNode("b", N.SKIPPED, "upstream `a` cancelled", skip_cause=SkipCause.UPSTREAM),
        SetRun(RunState.FAILED, "failed: a"),
    ]
    assert p.wake_at is None


def test_retry_that_fails_to_render_fails_the_node() -> None:
    g = graph_of("""
id: rerender
nodes:
  up: {uses: noop}
  a:
    uses: noop
    needs: [up]
    retry: {attempts: 2}
    with: {v: "{{ nodes.up.outputs.v }}"}
""")
    # `up` lost its output key between passes (a corrupt snapshot): the retry cannot render.
    run = run_of(g, up=done({}), a=nv(N.RETRY_WAIT, att(1, N.FAILED), retry_at=T0))
    p = plan(g, run, T0)
    a = set_node(p, "a")
    assert a.to is N.FAILED and "`with:`" in a.reason and "'v'" in (a.error or "")
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: a")


# --- 8. timeout ----------------------------------------------------------------------------------

TIMEOUT = """
id: timeout
nodes:
  a: {uses: noop, timeout: 30s}
  b: {uses: noop, needs: [a]}
"""

TIMEOUT_RETRY = """
id: timeout-retry
nodes:
  a: {uses: noop, timeout: 30s, retry: {attempts: 2, backoff: 5s}}
"""


@pytest.mark.parametrize("attempt_state", [N.RUNNING, N.QUEUED])
def test_before_the_deadline_only_a_wake(attempt_state: NodeState) -> None:
    g = graph_of(TIMEOUT)
    run = run_of(g, a=nv(N.RUNNING, att(1, attempt_state, created=T0)))
    p = plan(g, run, T0 + secs(29))
    assert p.decisions == []
    assert p.wake_at == T0 + secs(30)


def test_past_the_deadline_the_attempt_is_cancelled_and_timed_out() -> None:
    g = graph_of(TIMEOUT)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.RUNNING, created=T0)))
    now = T0 + secs(31)
    p = plan(g, run, now)
    assert p.decisions == [
        CancelAttempt("a", 1),
        CloseAttempt("a", 1, N.TIMED_OUT, "timed out after 30s"),
        SetNode("a", N.TIMED_OUT, "attempt 1 timed_out", error="timed out after 30s"),
        SetNode("b", N.SKIPPED, "upstream `a` timed_out", skip_cause=SkipCause.UPSTREAM),
        SetRun(RunState.FAILED, "failed: a"),
    ]
    apply(run, p.decisions, now)  # every transition is legal


def test_timeout_with_attempts_left_waits_to_retry() -> None:
    g = graph_of(TIMEOUT_RETRY)
    run = run_of(g, a=nv(N.QUEUED, att(1, N.QUEUED, created=T0)))
    now = T0 + secs(31)
    p = plan(g, run, now)
    assert p.decisions == [
        CancelAttempt("a", 1),
        CloseAttempt("a", 1, N.TIMED_OUT, "timed out after 30s"),
        SetNode("a", N.RETRY_WAIT, "attempt 1 timed_out; retry 2 of 2",
                error="timed out after 30s", retry_at=now + secs(5)),
    ]
    assert p.wake_at == now + secs(5)
    run = apply(run, p.decisions, now)
    p = plan(g, run, now + secs(5))
    assert p.decisions == [Submit("a", 2, {})]


def test_timeout_deadline_is_per_attempt() -> None:
    g = graph_of(TIMEOUT_RETRY)
    second = T0 + secs(100)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.TIMED_OUT, created=T0, finished=T0 + secs(31)),
                         att(2, N.RUNNING, created=second)))
    p = plan(g, run, second + secs(20))
    assert p.decisions == [] and p.wake_at == second + secs(30)


def test_earliest_wake_wins() -> None:
    g = graph_of("""
id: wakes
nodes:
  a: {uses: noop, timeout: 30s}
  b: {uses: noop, timeout: 10s}
  c: {uses: noop, retry: {attempts: 2, backoff: 1h}}
""")
    run = run_of(g, a=nv(N.RUNNING, att(1, N.RUNNING)), b=nv(N.RUNNING, att(1, N.RUNNING)),
                 c=nv(N.RUNNING, att(1, N.FAILED, finished=T0)))
    p = plan(g, run, T0 + secs(1))
    assert p.wake_at == T0 + secs(10)
    assert set_node(p, "c").retry_at == T0 + secs(3600)


# --- 9. cancel -----------------------------------------------------------------------------------

CANCEL = """
id: cancel
nodes:
  a: {uses: noop}
  b: {uses: noop}
  c: {uses: noop, retry: {attempts: 2, backoff: 1m}}
  d: {uses: noop}
  e: {uses: noop, needs: [a]}
"""


def test_cancel_stops_what_runs_and_cancels_what_waits() -> None:
    g = graph_of(CANCEL)
    run = run_of(g, RunState.CANCELLING,
                 a=nv(N.RUNNING, att(1, N.RUNNING)),
                 b=nv(N.PENDING),
                 c=nv(N.RETRY_WAIT, att(1, N.FAILED), retry_at=T0 + secs(60)),
                 d=done())
    p = plan(g, run, T0)
    assert p.decisions == [
        CancelAttempt("a", 1),
        CloseAttempt("a", 1, N.CANCELLED, "run cancelled"),
        SetNode("a", N.CANCELLED, "run cancelled"),
        SetNode("b", N.CANCELLED, "run cancelled"),
        SetNode("c", N.CANCELLED, "run cancelled"),
        SetNode("e", N.CANCELLED, "run cancelled"),
        SetRun(RunState.CANCELLED, "cancelled"),
    ]
    assert not of_type(p, Submit)
    assert p.wake_at is None  # the retry of c is not waited for
    after = apply(run, p.decisions, T0)
    assert after.state is RunState.CANCELLED
    assert after.nodes["d"].state is N.SUCCEEDED  # terminal nodes untouched


def test_cancel_queued_node_with_queued_attempt() -> None:
    g = graph_of("""
id: cancelq
nodes:
  a: {uses: noop}
""")
    run = run_of(g, RunState.CANCELLING, a=nv(N.QUEUED, att(1, N.QUEUED)))
    p = plan(g, run, T0)
    assert p.decisions == [CancelAttempt("a", 1),
                           CloseAttempt("a", 1, N.CANCELLED, "run cancelled"),
                           SetNode("a", N.CANCELLED, "run cancelled"),
                           SetRun(RunState.CANCELLED, "cancelled")]


def test_cancel_does_not_cancel_an_attempt_that_already_finished() -> None:
    g = graph_of("""
id: cancelf
nodes:
  a: {uses: noop}
""")
    run = run_of(g, RunState.CANCELLING, a=nv(N.RUNNING, att(1, N.SUCCEEDED, finished=T0)))
    p = plan(g, run, T0)
    assert not of_type(p, CancelAttempt)
    assert not of_type(p, CloseAttempt)
    assert set_node(p, "a").to in NODE_TERMINAL
    assert p.decisions[-1] == SetRun(RunState.CANCELLED, "cancelled")


def test_cancelling_with_everything_finished_just_finishes() -> None:
    g = graph_of(CANCEL)
    run = run_of(g, RunState.CANCELLING, a=done(), b=done(), c=done(), d=done(), e=done())
    assert plan(g, run, T0).decisions == [SetRun(RunState.CANCELLED, "cancelled")]


# --- 10. finishing -------------------------------------------------------------------------------


def test_all_succeeded_or_skipped_succeeds_the_run() -> None:
    g = graph_of(IF_FLOW)
    run = run_of(g, a=done(), gated=nv(N.SKIPPED), after_gated=nv(N.SKIPPED), bare=done(),
                 after_all=done())
    p = plan(g, run, T0)
    assert p.decisions == [SetRun(RunState.SUCCEEDED, "every node succeeded or was skipped")]


def test_a_new_run_where_everything_is_skipped_finishes_in_one_pass() -> None:
    g = graph_of("""
id: allskip
inputs:
  go: {type: boolean}
nodes:
  a: {uses: noop, if: "inputs.go"}
  b: {uses: noop, needs: [a]}
""")
    run = run_of(g, RunState.PENDING, inputs={"go": False})
    p = plan(g, run, T0)
    assert p.decisions == [
        SetRun(RunState.RUNNING, "planned"),
        SetNode("a", N.SKIPPED, "`if:` is false", skip_cause=SkipCause.CONDITION),
        SetNode("b", N.SKIPPED, "upstream `a` skipped", skip_cause=SkipCause.UPSTREAM),
        SetRun(RunState.SUCCEEDED, "every node succeeded or was skipped"),
    ]
    assert apply(run, p.decisions, T0).state is RunState.SUCCEEDED


@pytest.mark.parametrize("state", sorted(RUN_TERMINAL))
def test_terminal_run_gives_an_empty_plan(state: RunState) -> None:
    g = graph_of(TIMEOUT)
    # even with work that would otherwise be decided (a timed out, b pending)
    run = run_of(g, state, a=nv(N.RUNNING, att(1, N.RUNNING, created=T0)))
    p = plan(g, run, T0 + secs(3600))
    assert p.decisions == []
    assert p.wake_at is None


# --- 11. `with:` rendering failure ----------------------------------------------------------------


def test_with_referring_to_a_missing_output_key_fails_the_node() -> None:
    g = graph_of("""
id: missing
nodes:
  a: {uses: noop}
  b: {uses: noop, needs: [a], with: {ok: "{{ nodes.a.outputs.here }}",
                                      bad: "id={{ nodes.a.outputs.not_there }}"}}
  c: {uses: noop, needs: [b]}
""")
    p = plan(g, run_of(g, a=done({"here": 1})), T0)
    b = set_node(p, "b")
    assert b.to is N.FAILED
    assert "`with:`" in b.reason
    assert b.error is not None and "not_there" in b.error
    assert not of_type(p, Submit)
    assert set_node(p, "c").to is N.SKIPPED
    assert p.decisions[-1] == SetRun(RunState.FAILED, "failed: b")


# --- 12. purity ----------------------------------------------------------------------------------


def test_plan_is_pure() -> None:
    g = graph_of(DIAMOND)
    run = run_of(g, RunState.PENDING, inputs={"deep": {"list": [1, 2]}},
                 a=done(), b=nv(N.RUNNING, att(1, N.SUCCEEDED, finished=T0, outputs={"v": 1})),
                 c=nv(N.RUNNING, att(1, N.SUCCEEDED, finished=T0, outputs={"v": 2})))
    before = copy.deepcopy(run)
    first = plan(g, run, T0)
    second = plan(g, run, T0)
    assert first == second
    assert first.decisions  # non-trivial: settles b and c and submits d
    assert submitted(first) == ["d"]
    assert run == before
    assert run.nodes["b"].outputs == {} and run.nodes["b"].state is N.RUNNING
    assert run.state is RunState.PENDING
    assert run.nodes["b"].current is not None
    assert run.nodes["b"].current.outputs == {"v": 1}


def test_plan_is_pure_across_a_retry_and_timeout() -> None:
    g = graph_of(TIMEOUT_RETRY)
    run = run_of(g, a=nv(N.RUNNING, att(1, N.RUNNING, created=T0)))
    before = copy.deepcopy(run)
    now = T0 + secs(45)
    assert plan(g, run, now) == plan(g, run, now)
    assert run == before
    assert run.nodes["a"].current == att(1, N.RUNNING, created=T0)


# --- manual retry (a re-opened node keeps its earlier attempts) ----------------------------------


def test_reopened_node_continues_its_attempt_numbers() -> None:
    g = graph_of("""
id: reopen
nodes:
  a: {uses: noop, retry: {attempts: 2}}
""")
    run = run_of(g, a=nv(N.PENDING, att(1, N.FAILED, finished=T0), att(2, N.FAILED, finished=T0)))
    p = plan(g, run, T0)
    assert of_type(p, Submit) == [Submit("a", 3, {})]


def test_reopened_node_gets_a_fresh_round_of_retries() -> None:
    g = graph_of("""
id: reopen
nodes:
  a: {uses: noop, retry: {attempts: 2, backoff: 5s}}
""")
    earlier = (att(1, N.FAILED, finished=T0), att(2, N.FAILED, finished=T0))
    first_of_round = replace(nv(N.RUNNING, *earlier, att(3, N.FAILED, finished=T0)), retry_base=2)
    p = plan(g, run_of(g, a=first_of_round), T0)
    retry = of_type(p, SetNode)
    assert [(d.to, d.retry_at) for d in retry] == [(N.RETRY_WAIT, T0 + timedelta(seconds=5))]
    assert "retry 2 of 2" in retry[0].reason

    last_of_round = replace(nv(N.RUNNING, *earlier, att(3, N.FAILED, finished=T0),
                               att(4, N.FAILED, finished=T0)), retry_base=2)
    p = plan(g, run_of(g, a=last_of_round), T0)
    assert [d.to for d in of_type(p, SetNode)] == [N.FAILED]


# --- 13. property: simulated runs always finish ---------------------------------------------------


@st.composite
def flows(draw: st.DrawFn) -> tuple[str, dict[str, list[str]]]:
    size = draw(st.integers(min_value=1, max_value=8))
    needs: dict[str, list[str]] = {}
    lines = ["id: prop", "inputs:", "  flag: {type: boolean}", "nodes:"]
    for j in range(size):
        nid = f"n{j}"
        ups = [f"n{i}" for i in range(j) if draw(st.booleans())] if j else []
        needs[nid] = ups
        lines.append(f"  {nid}:")
        lines.append("    uses: noop")
        if ups:
            lines.append(f"    needs: [{', '.join(ups)}]")
            if draw(st.booleans()):
                lines.append("    trigger_rule: all_done")
        attempts = draw(st.integers(min_value=1, max_value=3))
        backoff = draw(st.sampled_from(["0s", "5s", "20s"]))
        lines.append(f"    retry: {{attempts: {attempts}, backoff: {backoff}}}")
        if draw(st.booleans()):
            lines.append("    timeout: 30s")
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            lines.append('    if: "inputs.flag"')
        lines.append(f'    with: {{me: "{nid}", run: "{{{{ run.id }}}}"}}')
    return "\n".join(lines) + "\n", needs


OUTCOMES = [N.SUCCEEDED, N.FAILED, N.LOST, N.CANCELLED]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow=flows(), flag=st.booleans(), data=st.data())
def test_simulated_runs_always_finish(flow: tuple[str, dict[str, list[str]]], flag: bool,
                                      data: st.DataObject) -> None:
    text, needs = flow
    g = graph_of(text)
    max_attempts = {nid: g.node(nid).retry.attempts for nid in needs}
    run = run_of(g, RunState.PENDING, inputs={"flag": flag})
    now = T0
    seen: set[tuple[str, int]] = set()
    bound = 4 * sum(max_attempts.values()) + 10
    cancel_at = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=6)),
                          label="cancel_at")
    final: SetRun | None = None

    for step in range(bound):
        if cancel_at == step and run.state in {RunState.PENDING, RunState.RUNNING}:
            run = replace(run, state=transition(run.state, RunState.CANCELLING))
        p = plan(g, run, now)
        assert plan(g, run, now) == p  # deterministic

        # Apply one decision at a time, checking each Submit against the state it lands on.
        for decision in p.decisions:
            if isinstance(decision, Submit):
                for up in needs[decision.node_id]:
                    assert run.nodes[up].state in NODE_TERMINAL, (decision, up, run.nodes[up])
                key = (decision.node_id, decision.attempt)
                assert key not in seen, f"submitted twice: {key}"
                seen.add(key)
                assert 1 <= decision.attempt <= max_attempts[decision.node_id]
                assert decision.params == {"me": decision.node_id, "run": "run-1"}
                assert run.state not in RUN_TERMINAL and run.state is not RunState.CANCELLING
            run = apply(run, [decision], now)
            if isinstance(decision, SetRun) and decision.to in RUN_TERMINAL:
                final = decision
        if final is not None:
            break
        # Liveness: whatever waits to retry is covered by the plan's wake.
        for nid, view in run.nodes.items():
            if view.state is N.RETRY_WAIT:
                assert view.retry_at is not None, nid
                assert p.wake_at is not None and p.wake_at <= view.retry_at, (nid, p.wake_at)

        # The remote side: each in-flight attempt finishes or keeps running.
        for nid, view in run.nodes.items():
            current = view.current
            if view.state in NODE_IN_FLIGHT and current is not None \
                    and current.state in NODE_IN_FLIGHT:
                # Only a node with a timeout may hang: the planner ends it.
                choices = [*OUTCOMES, N.RUNNING] if g.node(nid).timeout is not None else OUTCOMES
                outcome = data.draw(st.sampled_from(choices), label=f"{nid}#{current.number}")
                if outcome is N.RUNNING:
                    if current.state is N.QUEUED:  # the adapter took it: both move to RUNNING
                        started = replace(current, state=transition(current.state, N.RUNNING))
                        nodes = dict(run.nodes)
                        nodes[nid] = replace(view, state=transition(view.state, N.RUNNING),
                                             attempts=(*view.attempts[:-1], started))
                        run = replace(run, nodes=nodes)
                    continue
                run = finish_attempt(run, nid, outcome, now,
                                     outputs={"me": nid} if outcome is N.SUCCEEDED else None,
                                     error=None if outcome is N.SUCCEEDED else "boom")
        # The clock: jump to the planner's wake, or a little beyond.
        now += secs(data.draw(st.integers(min_value=0, max_value=40), label="tick"))
        if p.wake_at is not None and p.wake_at > now:
            now = p.wake_at

    assert final is not None, f"run did not finish in {bound} steps: {run}"
    event(f"run {final.to.value}")
    event(f"{len(seen)} submits" if len(seen) < 5 else "5+ submits")
    assert run.state is final.to
    assert all(v.state in NODE_TERMINAL for v in run.nodes.values())
    assert plan(g, run, now) == Plan()  # a finished run has nothing more to decide
    # The run's outcome agrees with its nodes.
    failed = sorted(n for n, v in run.nodes.items()
                    if v.state in {N.FAILED, N.TIMED_OUT, N.LOST, N.CANCELLED})
    if final.to is RunState.SUCCEEDED:
        assert not failed
        assert all(v.state in {N.SUCCEEDED, N.SKIPPED} for v in run.nodes.values())
    elif final.to is RunState.FAILED:
        assert final.reason == "failed: " + ", ".join(failed)
    else:
        assert cancel_at is not None
    # Attempt numbers are consecutive from 1 and within the retry budget.
    for nid, view in run.nodes.items():
        assert [a.number for a in view.attempts] == list(range(1, len(view.attempts) + 1))
        assert len(view.attempts) <= max_attempts[nid]
        # A node succeeded only through a succeeded attempt, and with its outputs.
        if view.state is N.SUCCEEDED:
            assert view.current is not None and view.current.state is N.SUCCEEDED
            assert view.outputs == {"me": nid}


# --- import order --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["interlock.spec.graph", "interlock.engine.planner"])
def test_engine_imports_on_its_own(module: str) -> None:
    done_ = subprocess.run([sys.executable, "-c", f"import {module}"],
                           capture_output=True, text=True, timeout=60)
    assert done_.returncode == 0, done_.stderr
