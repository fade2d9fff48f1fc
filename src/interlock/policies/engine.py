"""Evaluating rules: each CEL expression compiled once, run over plain maps. No I/O, no
clock of its own; a rule that cannot be evaluated counts as violated (fail closed), with
why.

A rule that reads `node` or `system` is evaluated once per node; any other once per flow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

from interlock.errors import InterlockError
from interlock.policies.model import Mode, Point, Policy, Rule
from interlock.spec.approvals import ApprovalGate

ROOTS = frozenset({"flow", "node", "system", "run", "principal", "now", "point", "tool",
                   "agent"})
PER_NODE = frozenset({"node", "system", "tool", "agent"})
FLOW_SUBJECT = "flow"


class RuleError(InterlockError):
    """A rule's expression does not compile, or reads a name rules cannot see."""


@dataclass(frozen=True)
class Decision:
    policy: str
    revision: str       # the policy file's digest: which text decided
    rule: str
    mode: Mode
    point: Point
    subject: str        # `flow` or `node:<id>`
    allowed: bool
    message: str
    input_hash: str     # sha256 of what the rule saw (audited instead of the input itself)
    approval: ApprovalGate | None = None  # the rule's remedy: wait for it instead of refusing

    @property
    def violated(self) -> bool:
        """An enforced rule does not hold (refused, or the node waits for an approval)."""
        return not self.allowed and self.mode is Mode.ENFORCE

    @property
    def refuses(self) -> bool:
        return self.violated and self.approval is None

    @property
    def asks(self) -> bool:
        """Violated, and the rule says the node waits for its approval instead."""
        return self.violated and self.approval is not None

    def sentence(self) -> str:
        where = "" if self.subject == FLOW_SUBJECT else f" ({self.subject})"
        return f"policy `{self.policy}` rule `{self.rule}`{where}: {self.message}"


@lru_cache(maxsize=4096)
def compiled(expression: str) -> Any:
    """The program of ``expression``; RuleError when it does not compile or reads a name
    rules cannot see."""
    try:
        program = cel.compile(expression)
    except ValueError as exc:
        raise RuleError(f"not CEL: {exc}") from None
    unknown = sorted(set(program.variables()) - ROOTS)
    if unknown:
        raise RuleError(f"reads {', '.join(unknown)}; rules see {', '.join(sorted(ROOTS))}")
    return program


@lru_cache(maxsize=4096)
def _reads_node(when: str, check: str) -> bool:
    return bool(PER_NODE & (set(compiled(when).variables()) | set(compiled(check).variables())))


def per_node(rule: Rule) -> bool:
    return _reads_node(rule.when, rule.check)


class Subject:
    """What the rules see about one subject (the flow, or one node), converted to CEL once
    and hashed once, however many rules read it."""

    def __init__(self, name: str, context: dict[str, Any]):
        self.name = name
        self.cel = cel.Context(variables=context)
        self.input_hash = digest(context)


def digest(value: Any) -> str:
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def decide(policy: Policy, revision: str, point: Point, subject: Subject | str,
           context: dict[str, Any] | None = None) -> list[Decision]:
    """The decisions of ``policy``'s rules that apply at ``point`` to this subject (a
    `Subject`, or its name and context)."""
    if not isinstance(subject, Subject):
        subject = Subject(subject, context or {})
    made = []
    node_subject = subject.name != FLOW_SUBJECT
    for rule in policy.rules:
        if point not in rule.points or per_node(rule) is not node_subject:
            continue
        try:
            if compiled(rule.when).execute(subject.cel) is not True:
                continue
            allowed = compiled(rule.check).execute(subject.cel) is True
            message = rule.message
        except Exception as exc:  # noqa: BLE001  (a bad rule must refuse, not crash the run)
            allowed, message = False, f"{rule.message} (the rule failed: {exc})"
        made.append(Decision(policy=policy.policy, revision=revision, rule=rule.name,
                             mode=policy.mode, point=point, subject=subject.name,
                             allowed=allowed, message=message,
                             input_hash=subject.input_hash, approval=rule.approval))
    return made
