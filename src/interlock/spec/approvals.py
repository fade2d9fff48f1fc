"""The approval gate of a flow document: who decides, how many, by when, and what then.

A gate sits on any node (`approval:`; the node is submitted only once the gate approves) or
is a node of its own (`uses: approval`, a pure decision whose outputs are the decision).
The rules are read by `interlock.approvals`; the planner only sees the request's state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from interlock.spec.fields import Duration, InputSpec, Strict

# `uses:` of a node that is only a decision: no adapter, no attempt.
DECISION_KIND = "approval"
APPROVE = "approve"
REJECT = "reject"
OPTION = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
MAX_RULES = 10
MAX_COUNT = 20
MAX_PRINCIPALS = 100


class OnTimeout(StrEnum):
    REJECT = "reject"    # as if rejected: `on_reject` decides (fail or skip)
    FAIL = "fail"        # the node ends timed_out
    APPROVE = "approve"  # only when written: nobody decided, the work goes ahead (recorded)


class OnReject(StrEnum):
    FAIL = "fail"        # the node fails with the reason; the run fails
    SKIP = "skip"        # the node is skipped; downstream `all_success` nodes skip too


class QuorumRule(Strict):
    """`count` distinct people, each holding one of: the `role` on the run's namespace, the
    `group`, or a name in `principals` (`user:alice`, `oidc:bob`, or a bare name)."""

    name: str = Field(default="", max_length=64)
    count: int = Field(default=1, ge=1, le=MAX_COUNT)
    role: str | None = Field(default=None, max_length=32)
    group: str | None = Field(default=None, max_length=200)
    principals: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=MAX_PRINCIPALS)

    @model_validator(mode="after")
    def _someone(self) -> QuorumRule:
        if not (self.role or self.group or self.principals):
            raise ValueError("a rule names who may count: `role:`, `group:` or `principals:`, "
                             "e.g. {group: compliance, count: 1}")
        return self

    @property
    def label(self) -> str:
        """How votes and audit records name the rule."""
        if self.name:
            return self.name
        who = self.role and f"role {self.role}" or self.group and f"group {self.group}" \
            or "named principals"
        return f"{self.count} from {who}"


class Escalation(Strict):
    """After `after` with no decision, the `rules` here may decide too (either set suffices)."""

    after: Duration = Field(gt=0)
    rules: list[QuorumRule] = Field(min_length=1, max_length=MAX_RULES)


class ApprovalGate(Strict):
    subject: str = Field(default="", max_length=500)
    body: str = Field(default="", max_length=20_000)
    options: list[Annotated[str, Field(pattern=OPTION)]] = Field(
        default_factory=lambda: [APPROVE, REJECT], min_length=2, max_length=20)
    reject_options: list[Annotated[str, Field(pattern=OPTION)]] = Field(
        default_factory=lambda: [REJECT], description="options that reject (one vote suffices)")
    inputs: dict[str, InputSpec] = Field(default_factory=dict, max_length=50)
    rules: list[QuorumRule] = Field(
        default_factory=lambda: [QuorumRule(role="approver")], min_length=1,
        max_length=MAX_RULES)
    timeout: Duration | None = Field(default=None, gt=0)
    on_timeout: OnTimeout = OnTimeout.REJECT
    on_reject: OnReject = OnReject.FAIL
    remind_every: Duration | None = Field(default=None, gt=0)
    escalate: Escalation | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalGate:
        if len(set(self.options)) != len(self.options):
            raise ValueError("`options` repeat a name")
        unknown = sorted(set(self.reject_options) - set(self.options))
        if unknown:
            raise ValueError(f"`reject_options` {unknown} are not among `options` "
                             f"{self.options}")
        if not set(self.options) - set(self.reject_options):
            raise ValueError("every option rejects: name at least one that approves")
        if self.on_timeout is OnTimeout.APPROVE and self.timeout is None:
            raise ValueError("`on_timeout: approve` needs a `timeout:`")
        return self

    @property
    def approving(self) -> list[str]:
        return [o for o in self.options if o not in self.reject_options]
