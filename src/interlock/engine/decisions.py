"""What the planner decides: plain values the controller applies in order, in one
transaction (`interlock.dispatch.controller`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.engine.snapshot import NodeView, RunView
from interlock.states import NODE_TERMINAL, ApprovalState, NodeState, RunState, SkipCause


@dataclass(frozen=True)
class Submit:
    """Start attempt ``attempt`` of a node with its rendered parameters (node -> QUEUED)."""

    node_id: str
    attempt: int
    params: dict[str, Any]


@dataclass(frozen=True)
class SetNode:
    node_id: str
    to: NodeState
    reason: str
    error: str | None = None
    outputs: dict[str, Any] | None = None
    retry_at: datetime | None = None
    skip_cause: SkipCause | None = None  # set when ``to`` is SKIPPED: what `retry` decides by


@dataclass(frozen=True)
class CloseAttempt:
    """Settle an attempt the remote side did not settle (timed out, or cancelled)."""

    node_id: str
    attempt: int
    to: NodeState
    reason: str


@dataclass(frozen=True)
class CancelAttempt:
    """Ask the foreign system to stop an attempt's job."""

    node_id: str
    attempt: int


@dataclass(frozen=True)
class SetRun:
    to: RunState
    reason: str


@dataclass(frozen=True)
class OpenApproval:
    """Ask people: a new approval request for a gated node (the node -> APPROVAL_WAIT)."""

    node_id: str
    params: dict[str, Any]       # the rendered `with:` it will release
    subject: str
    body: str
    payload_hash: str
    deadline: datetime | None
    escalate_at: datetime | None
    next_remind_at: datetime | None
    imposed: dict[str, Any] | None = None  # {policy, rule, gate}: a policy asks, not the flow


@dataclass(frozen=True)
class CloseApproval:
    """End a request without a vote: timed out, cancelled with the run, or void (it covered
    other values than the node would now be submitted with)."""

    node_id: str
    request_id: str
    to: ApprovalState
    reason: str
    expected: ApprovalState = ApprovalState.PENDING  # APPROVED when a stale approval is void


@dataclass(frozen=True)
class NudgeApproval:
    """A pending request's reminder is due (``escalate``: its escalation rules apply now)."""

    node_id: str
    request_id: str
    escalate: bool
    next_remind_at: datetime | None


Decision = (Submit | SetNode | CloseAttempt | CancelAttempt | SetRun | OpenApproval
            | CloseApproval | NudgeApproval)


@dataclass
class Plan:
    decisions: list[Decision] = field(default_factory=list)
    wake_at: datetime | None = None  # when the planner must look again with no event

    def wake(self, at: datetime) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


def context(run: RunView, nodes: dict[str, NodeView]) -> dict[str, Any]:
    """What `{{ }}` expressions see."""
    return {
        "inputs": run.inputs,
        "run": {"id": run.run_id, "trace_id": run.trace_id},
        "nodes": {nid: _seen(v) for nid, v in nodes.items() if v.state in NODE_TERMINAL},
    }


def _seen(view: NodeView) -> dict[str, Any]:
    seen: dict[str, Any] = {"outputs": view.outputs, "state": view.state.value}
    if view.approval is not None and view.approval.option is not None:
        seen["approval"] = view.approval.decision()
    return seen
