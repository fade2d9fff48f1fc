"""Read-only views of a run that the planner decides from (built by the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlock.states import ApprovalState, NodeState, RunState


@dataclass(frozen=True)
class ApprovalView:
    """A gated node's latest approval request, as the planner needs it."""

    request_id: str
    state: ApprovalState
    payload_hash: str
    created_at: datetime
    deadline: datetime | None = None
    escalate_at: datetime | None = None
    escalated: bool = False
    next_remind_at: datetime | None = None
    option: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    decided_by: tuple[str, ...] = ()
    reason: str | None = None

    def decision(self) -> dict[str, Any]:
        """What downstream nodes see as `nodes.<id>.approval` (and a decision node's outputs)."""
        return {"option": self.option, "inputs": self.inputs, "by": list(self.decided_by)}


@dataclass(frozen=True)
class AttemptView:
    number: int
    state: NodeState
    created_at: datetime
    finished_at: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class NodeView:
    state: NodeState = NodeState.PENDING
    attempts: tuple[AttemptView, ...] = ()   # oldest first; the last is the current one
    retry_at: datetime | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    retry_base: int = 0   # attempts made before the current round (a manual retry starts one)
    approval: ApprovalView | None = None  # the latest request of its gate, if it has one

    @property
    def current(self) -> AttemptView | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def attempt_count(self) -> int:
        return self.attempts[-1].number if self.attempts else 0


@dataclass(frozen=True)
class RunView:
    run_id: str
    state: RunState
    inputs: dict[str, Any]
    trace_id: str
    nodes: dict[str, NodeView]
