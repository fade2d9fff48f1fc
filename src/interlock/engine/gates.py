"""The planner's side of approval gates: when a gated node may go, waits, or ends.

Pure like the planner: it reads the node's latest request (`NodeView.approval`) and decides.
The request's state is settled elsewhere by one compare-and-set (a vote, the timer here, a
cancel), so whichever lands first is the only outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from interlock.engine.decisions import (
    CloseApproval,
    Decision,
    NudgeApproval,
    OpenApproval,
    Plan,
    SetNode,
    Submit,
    context,
)
from interlock.engine.payload import payload_hash
from interlock.engine.snapshot import ApprovalView, NodeView, RunView
from interlock.errors import ExpressionError
from interlock.spec.approvals import ApprovalGate, OnReject, OnTimeout
from interlock.spec.expressions import render_params, render_string
from interlock.spec.models import Node
from interlock.states import ApprovalState, NodeState, SkipCause

_A = ApprovalState
_VOIDABLE = frozenset({_A.PENDING, _A.APPROVED})


def release_or_ask(run: RunView, nodes: dict[str, NodeView], node_id: str, node: Node,
                   attempt: int, now: datetime, result: Plan) -> list[Decision]:
    """A node ready to start (or to retry): submit it if its gate approved exactly these
    values, wait on the open request, or open a new one."""
    gate = node.approval
    ctx = context(run, nodes)
    try:
        params = render_params(node.with_, ctx)
        subject = str(render_string(gate.subject, ctx)) if gate else ""
        body = str(render_string(gate.body, ctx)) if gate else ""
    except ExpressionError as exc:
        return [SetNode(node_id, NodeState.FAILED, "`with:` failed to render", error=str(exc))]
    if gate is None:
        return [Submit(node_id, attempt, params)]
    view = nodes[node_id]
    request = view.approval
    digest = payload_hash(node_id, node, params, subject, body)
    if request is not None and request.payload_hash == digest:
        if _approves(request, gate):
            return _release(node_id, node, request, attempt, params)
        if request.state is _A.PENDING:
            return _waiting(node_id, gate, view, request, now, result)
    return ask(node_id, gate, view, Asked(params, subject, body, digest), now, result)


@dataclass(frozen=True)
class Asked:
    """What a new request shows and is bound to."""

    params: dict[str, Any]
    subject: str
    body: str
    digest: str
    imposed: dict[str, Any] | None = None  # (policy, rule, gate) when a policy asks


def ask(node_id: str, gate: ApprovalGate, view: NodeView, asked: Asked, now: datetime,
        result: Plan) -> list[Decision]:
    """Open a new request (voiding the node's previous one if it covered other values)."""
    request = view.approval
    decisions: list[Decision] = []
    if request is not None and request.state in _VOIDABLE:  # it covered other values
        decisions.append(CloseApproval(node_id, request.request_id, _A.VOID,
                                       "what it covered changed; asked again",
                                       expected=request.state))
    deadline = now + timedelta(seconds=gate.timeout) if gate.timeout else None
    escalate_at = now + timedelta(seconds=gate.escalate.after) if gate.escalate else None
    remind_at = now + timedelta(seconds=gate.remind_every) if gate.remind_every else None
    for due in (deadline, escalate_at, remind_at):
        if due is not None:
            result.wake(due)
    decisions.append(OpenApproval(node_id, asked.params, asked.subject, asked.body,
                                  asked.digest, deadline, escalate_at, remind_at,
                                  imposed=asked.imposed))
    if view.state is not NodeState.APPROVAL_WAIT:
        decisions.append(SetNode(node_id, NodeState.APPROVAL_WAIT, "waiting for approval"))
    return decisions


def waiting(run: RunView, nodes: dict[str, NodeView], node_id: str, node: Node,
            attempt: int, now: datetime, result: Plan) -> list[Decision]:
    """A node in APPROVAL_WAIT: act on its request's outcome, or on its timers."""
    gate = node.approval
    view = nodes[node_id]
    request = view.approval
    if gate is None or request is None:  # not reachable from a stored run; ask again
        return release_or_ask(run, nodes, node_id, node, attempt, now, result)
    if request.state is _A.PENDING:
        return _waiting(node_id, gate, view, request, now, result)
    if request.state is _A.REJECTED:
        return _rejected(node_id, gate, request.reason or "rejected")
    if request.state is _A.TIMED_OUT and gate.on_timeout is OnTimeout.FAIL:
        return [SetNode(node_id, NodeState.TIMED_OUT, "approval timed out",
                        error=request.reason)]
    if request.state is _A.TIMED_OUT and gate.on_timeout is OnTimeout.REJECT:
        return _rejected(node_id, gate, request.reason or "approval timed out")
    # Approved (or timed out with `on_timeout: approve`); values are checked once more.
    return release_or_ask(run, nodes, node_id, node, attempt, now, result)


def cancel(node_id: str, view: NodeView) -> list[Decision]:
    """The run is cancelled: a pending request closes with it (one outcome: cancelled)."""
    request = view.approval
    if view.state is NodeState.APPROVAL_WAIT and request is not None \
            and request.state is _A.PENDING:
        return [CloseApproval(node_id, request.request_id, _A.CANCELLED, "run cancelled")]
    return []


def _approves(request: ApprovalView, gate: ApprovalGate) -> bool:
    return request.state is _A.APPROVED or (
        request.state is _A.TIMED_OUT and gate.on_timeout is OnTimeout.APPROVE)


def _release(node_id: str, node: Node, request: ApprovalView, attempt: int,
             params: dict[str, Any]) -> list[Decision]:
    if node.decision_only:  # the decision is the node's whole work
        return [SetNode(node_id, NodeState.SUCCEEDED, _decided(request),
                        outputs=request.decision())]
    return [Submit(node_id, attempt, params)]  # also a retry of values approved before


def _decided(request: ApprovalView) -> str:
    if request.state is _A.TIMED_OUT:
        return "approved by `on_timeout: approve` (nobody decided)"
    return f"{request.option} by {', '.join(request.decided_by)}"


def _waiting(node_id: str, gate: ApprovalGate, view: NodeView, request: ApprovalView,
             now: datetime, result: Plan) -> list[Decision]:
    decisions: list[Decision] = []
    if view.state is not NodeState.APPROVAL_WAIT:  # e.g. a retry of the same values, pending
        decisions.append(SetNode(node_id, NodeState.APPROVAL_WAIT, "waiting for approval"))
    if request.deadline is not None and request.deadline <= now:
        reason = f"nobody decided within {gate.timeout:g}s"
        decisions.append(CloseApproval(node_id, request.request_id, _A.TIMED_OUT, reason))
        if gate.on_timeout is OnTimeout.FAIL:
            return [*decisions, SetNode(node_id, NodeState.TIMED_OUT, "approval timed out",
                                        error=reason)]
        if gate.on_timeout is OnTimeout.REJECT:
            return [*decisions, *_rejected(node_id, gate, reason)]
        result.wake(now)  # `on_timeout: approve`: the next pass re-checks the values, submits
        return decisions
    escalate = (request.escalate_at is not None and not request.escalated
                and request.escalate_at <= now)
    remind = request.next_remind_at is not None and request.next_remind_at <= now
    next_remind = request.next_remind_at
    if remind and gate.remind_every:
        next_remind = now + timedelta(seconds=gate.remind_every)
    if escalate or remind:
        decisions.append(NudgeApproval(node_id, request.request_id, escalate, next_remind))
    for due in (request.deadline, None if escalate or request.escalated else request.escalate_at,
                next_remind):
        if due is not None:
            result.wake(due)
    return decisions


def _rejected(node_id: str, gate: ApprovalGate, reason: str) -> list[Decision]:
    if gate.on_reject is OnReject.SKIP:
        return [SetNode(node_id, NodeState.SKIPPED, f"approval: {reason}",
                        skip_cause=SkipCause.REJECTED)]
    return [SetNode(node_id, NodeState.FAILED, "approval rejected", error=reason)]
