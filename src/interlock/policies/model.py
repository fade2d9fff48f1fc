"""A policy file: a scope (namespace pattern), a mode, and rules in CEL.

    policy: production-approvals
    scope: "bank.*"
    mode: enforce                 # enforce | report | off
    rules:
      - name: two-people-on-production
        when: "'env' in system.labels && system.labels.env == 'production'"
        check: "node.approval != null && node.approval.people >= 2"
        message: nodes on production systems need a two-person approval
        points: [register, start, submit]
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from interlock.spec.approvals import ApprovalGate
from interlock.spec.namespaces import check_pattern

NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$"
MAX_RULES = 100
MAX_EXPRESSION = 4000


class Mode(StrEnum):
    ENFORCE = "enforce"  # a violation refuses (registration, start) or fails the node
    REPORT = "report"    # decisions are audited, nothing is refused: try a policy on traffic
    OFF = "off"          # not evaluated


class Point(StrEnum):
    REGISTER = "register"  # `interlock validate`, and registering a flow (API, CLI)
    START = "start"        # a run is created (any trigger)
    SUBMIT = "submit"      # a node is about to be submitted to its system
    TOOL = "tool"          # an agent node's model asked for a tool call (`docs/agents.md`)


# What a rule is checked at when it does not say: `tool` only when asked for, since the
# rules written before it never meant to judge tool calls.
DEFAULT_POINTS = (Point.REGISTER, Point.START, Point.SUBMIT)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    when: str = Field(default="true", max_length=MAX_EXPRESSION,
                      description="CEL: whether the rule applies here")
    check: str = Field(max_length=MAX_EXPRESSION, description="CEL: what must hold")
    message: str = Field(max_length=500)
    points: list[Point] = Field(default_factory=lambda: list(DEFAULT_POINTS), min_length=1)
    approval: ApprovalGate | None = Field(default=None, description=(
        "instead of refusing: the node waits for this approval (at submit; a run start and a "
        "registration are then not refused for this rule)"))

    @model_validator(mode="after")
    def _plain_gate(self) -> Rule:
        gate = self.approval
        if gate is not None and any("{{" in text for text in (gate.subject, gate.body)):
            raise ValueError("a policy's approval `subject` and `body` are plain text (it "
                             "covers every flow in its scope: no `{{ }}`)")
        if gate is not None and Point.SUBMIT not in self.points:
            raise ValueError("a rule with `approval:` is acted on at `submit`: add it to "
                             "`points`")
        return self


class NamespaceLimits(BaseModel):
    """Limits a policy sets on every namespace in its scope, each counted on its own (a
    child covered by several policies gets the smallest)."""

    model_config = ConfigDict(extra="forbid")
    runs: int = Field(ge=1, le=100_000, description="runs in flight at once; the others queue")


class Duty(StrEnum):
    """Who may not approve a gate unless a policy waives it (`interlock.approvals.people`)."""

    STARTER = "starter"  # the principal that started the run
    AUTHOR = "author"    # the author of the flow revision it runs
    AGENT = "agent"      # the agent that asked for the step


class Separation(BaseModel):
    """Separation of duties on approval gates in the policy's scope: `waive` lets a duty's
    holder approve (recorded on the request and the vote); `keep` forbids any policy to
    waive it there (a parent's `keep` holds against a child's `waive`)."""

    model_config = ConfigDict(extra="forbid")
    waive: list[Duty] = Field(default_factory=list)
    keep: list[Duty] = Field(default_factory=list)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: str = Field(pattern=NAME)
    description: str = Field(default="", max_length=2000)
    scope: str = Field(default="*", max_length=200)
    mode: Mode = Mode.ENFORCE
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES)
    concurrency: NamespaceLimits | None = None
    separation: Separation | None = None

    @model_validator(mode="after")
    def _says_something(self) -> Policy:
        if not self.rules and self.concurrency is None and self.separation is None:
            raise ValueError("a policy needs `rules:`, `concurrency:` (e.g. {runs: 10}) or "
                             "`separation:`")
        return self

    @field_validator("scope")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return check_pattern(value)
