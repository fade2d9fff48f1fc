"""A tool's `approval:` (`docs/agents.md`): `required` (one person holding `approver` on the
run's namespace decides), or the rules of a node's approval gate (`rules:`, e.g. a
two-person rule `{role: approver, count: 2}`) and an optional `timeout:`. The rules are
checked by the host against the gate's own model (`interlock.spec.approvals.QuorumRule`)
when the node is submitted; this adapter cannot import it (it sees only the SDK)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from interlock.adapters import parse_duration

MAX_RULES = 10


class ToolApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RULES)
    timeout: float | None = Field(default=None, gt=0, le=7 * 86400,
                                  description="seconds, or 4h; then the model is told")

    @field_validator("timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)


Approval = Literal["required", "none"] | ToolApproval


def needed(approval: Approval) -> ToolApproval | None:
    """The approval a call must get before it runs, or None when it needs none."""
    if isinstance(approval, ToolApproval):
        return approval
    return ToolApproval() if approval == "required" else None
