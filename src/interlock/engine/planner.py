"""The planner: a pure function from (graph, run snapshot, clock) to decisions.

No I/O and no clock of its own, so every rule here is tested without services. The
controller applies the decisions in order, in one transaction; a pass may therefore
decide a node's outcome and act on it downstream at once (B starts in the same pass
that marks A succeeded).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from interlock.engine import gates
from interlock.engine.decisions import (
    CancelAttempt,
    CloseApproval,
    CloseAttempt,
    Decision,
    Plan,
    SetNode,
    SetRun,
    Submit,
    context,
)
from interlock.engine.snapshot import AttemptView, NodeView, RunView
from interlock.errors import ExpressionError
from interlock.spec.expressions import evaluate_condition
from interlock.spec.graph import FlowGraph
from interlock.spec.models import Node, TriggerRule
from interlock.states import (
    ATTEMPT_RETRYABLE,
    NODE_FAILURES,
    NODE_IN_FLIGHT,
    NODE_TERMINAL,
    RUN_TERMINAL,
    RUN_WAITING,
    NodeState,
    RunState,
    SkipCause,
)


def plan(graph: FlowGraph, run: RunView, now: datetime) -> Plan:
    result = Plan()
    if run.state in RUN_TERMINAL:
        return result
    if run.state in RUN_WAITING:  # the controller first checks its concurrency limits
        result.decisions.append(SetRun(RunState.RUNNING, "planned"))
    nodes = dict(run.nodes)  # effective states, updated as this pass decides
    cancelling = run.state is RunState.CANCELLING
    for node_id in graph.order:
        step = _cancel_node if cancelling else _advance_node
        for decision in step(graph, run, nodes, node_id, now, result):
            result.decisions.append(decision)
            nodes[node_id] = _apply(nodes[node_id], decision)
            if isinstance(decision, SetNode) and decision.retry_at is not None:
                result.wake(decision.retry_at)
            timeout = graph.node(node_id).timeout
            if isinstance(decision, Submit) and timeout is not None:
                result.wake(now + timedelta(seconds=timeout))
    _finish(run, nodes, cancelling, result)
    return result


def _apply(view: NodeView, decision: Decision) -> NodeView:
    """The node as it will be once ``decision`` lands (so later nodes see it this pass)."""
    if isinstance(decision, CloseApproval) and view.approval is not None:
        return replace(view, approval=replace(view.approval, state=decision.to,
                                              reason=decision.reason))
    if isinstance(decision, SetNode):
        return replace(view, state=decision.to, retry_at=decision.retry_at,
                       outputs=decision.outputs if decision.outputs is not None else view.outputs)
    if isinstance(decision, Submit):
        return replace(view, state=NodeState.QUEUED)
    return view


def _cancel_node(graph: FlowGraph, run: RunView, nodes: dict[str, NodeView], node_id: str,
                 now: datetime, result: Plan) -> list[Decision]:
    view = nodes[node_id]
    if view.state in NODE_TERMINAL:
        return []
    current = view.current
    if view.state in NODE_IN_FLIGHT and current is not None:
        if current.state in NODE_IN_FLIGHT:
            return [CancelAttempt(node_id, current.number),
                    CloseAttempt(node_id, current.number, NodeState.CANCELLED, "run cancelled"),
                    SetNode(node_id, NodeState.CANCELLED, "run cancelled")]
        # It finished before the cancel landed: keep what really happened, retry no more.
        return [SetNode(node_id, current.state, f"attempt {current.number} {current.state.value}",
                        error=current.error,
                        outputs=current.outputs if current.state is NodeState.SUCCEEDED else None)]
    return [*gates.cancel(node_id, view), SetNode(node_id, NodeState.CANCELLED, "run cancelled")]


def _advance_node(graph: FlowGraph, run: RunView, nodes: dict[str, NodeView], node_id: str,
                  now: datetime, result: Plan) -> list[Decision]:
    view = nodes[node_id]
    node = graph.node(node_id)
    if view.state is NodeState.PENDING:
        return _start(graph, run, nodes, node_id, node, now, result)
    if view.state in NODE_IN_FLIGHT:
        return _settle(node_id, node, view, now, result)
    if view.state is NodeState.SLOT_WAIT:  # the controller submits it once a slot is free
        return _submit(run, nodes, node_id, node, view_attempts_next(view), now, result)
    if view.state is NodeState.RETRY_WAIT:
        if view.retry_at is not None and view.retry_at > now:
            result.wake(view.retry_at)
            return []
        return _submit(run, nodes, node_id, node, view_attempts_next(view), now, result)
    if view.state is NodeState.APPROVAL_WAIT:
        return gates.waiting(run, nodes, node_id, node, view_attempts_next(view), now, result)
    return []


def _start(graph: FlowGraph, run: RunView, nodes: dict[str, NodeView], node_id: str,
           node: Node, now: datetime, result: Plan) -> list[Decision]:
    upstream = {u: nodes[u].state for u in node.needs}
    if any(state not in NODE_TERMINAL for state in upstream.values()):
        return []
    if node.trigger_rule is TriggerRule.ALL_SUCCESS:
        blocked = sorted(u for u, s in upstream.items() if s is not NodeState.SUCCEEDED)
        if blocked:
            first = blocked[0]
            return [SetNode(node_id, NodeState.SKIPPED,
                            f"upstream `{first}` {upstream[first].value}",
                            skip_cause=SkipCause.UPSTREAM)]
    if node.if_ is not None:
        try:
            go = evaluate_condition(node.if_, context(run, nodes))
        except ExpressionError as exc:
            return [SetNode(node_id, NodeState.FAILED, "`if:` failed", error=str(exc))]
        if not go:
            return [SetNode(node_id, NodeState.SKIPPED, "`if:` is false",
                            skip_cause=SkipCause.CONDITION)]
    return _submit(run, nodes, node_id, node, view_attempts_next(nodes[node_id]), now, result)


def view_attempts_next(view: NodeView) -> int:
    """Attempt numbers never repeat within a run, so idempotency keys never do either."""
    return view.attempt_count + 1


def _submit(run: RunView, nodes: dict[str, NodeView], node_id: str, node: Node,
            attempt: int, now: datetime, result: Plan) -> list[Decision]:
    """Render `with:` and submit, unless an approval gate has to let it through first."""
    return gates.release_or_ask(run, nodes, node_id, node, attempt, now, result)


def _settle(node_id: str, node: Node, view: NodeView, now: datetime,
            result: Plan) -> list[Decision]:
    """A node in flight: time it out, or turn its finished attempt into the node's outcome."""
    current = view.current
    if current is None:
        return []
    if current.state in NODE_IN_FLIGHT:
        if node.timeout is None:
            return []
        deadline = current.created_at + timedelta(seconds=node.timeout)
        if deadline > now:
            result.wake(deadline)
            return []
        timed_out = replace(current, state=NodeState.TIMED_OUT, finished_at=now,
                            error=f"timed out after {node.timeout:g}s")
        return [CancelAttempt(node_id, current.number),
                CloseAttempt(node_id, current.number, NodeState.TIMED_OUT, timed_out.error or ""),
                *_outcome(node_id, node, timed_out, now, view.retry_base)]
    return _outcome(node_id, node, current, now, view.retry_base)


def _outcome(node_id: str, node: Node, attempt: AttemptView, now: datetime,
             retry_base: int = 0) -> list[Decision]:
    """The node's state from its finished attempt. ``retry_base`` is the number of attempts
    made before the current round (a manual `retry` starts a new round of `retry.attempts`)."""
    if attempt.state is NodeState.SUCCEEDED:
        return [SetNode(node_id, NodeState.SUCCEEDED, f"attempt {attempt.number} succeeded",
                        outputs=attempt.outputs)]
    in_round = attempt.number - retry_base
    if attempt.state in ATTEMPT_RETRYABLE and in_round < node.retry.attempts:
        finished = attempt.finished_at or now
        retry_at = finished + timedelta(seconds=node.retry.delay_before(in_round + 1))
        return [SetNode(node_id, NodeState.RETRY_WAIT,
                        f"attempt {attempt.number} {attempt.state.value}; "
                        f"retry {in_round + 1} of {node.retry.attempts}",
                        error=attempt.error, retry_at=retry_at)]
    return [SetNode(node_id, attempt.state, f"attempt {attempt.number} {attempt.state.value}",
                    error=attempt.error)]


def _finish(run: RunView, nodes: dict[str, NodeView], cancelling: bool, result: Plan) -> None:
    if any(view.state not in NODE_TERMINAL for view in nodes.values()):
        return
    if cancelling:
        result.decisions.append(SetRun(RunState.CANCELLED, "cancelled"))
        return
    failed = sorted(nid for nid, v in nodes.items() if v.state in NODE_FAILURES)
    if failed:
        result.decisions.append(SetRun(RunState.FAILED, "failed: " + ", ".join(failed)))
    else:
        result.decisions.append(SetRun(RunState.SUCCEEDED, "every node succeeded or was skipped"))
