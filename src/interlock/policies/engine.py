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

ROOTS = frozenset({"flow", "node", "system", "run", "principal", "now", "point"})
PER_NODE = frozenset({"node", "system"})
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

    @property
    def refuses(self) -> bool:
        return not self.allowed and self.mode is Mode.ENFORCE

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


def per_node(rule: Rule) -> bool:
    return bool(PER_NODE & set(compiled(rule.when).variables())
                | PER_NODE & set(compiled(rule.check).variables()))


def digest(value: Any) -> str:
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def decide(policy: Policy, revision: str, point: Point, subject: str,
           context: dict[str, Any]) -> list[Decision]:
    """The decisions of ``policy``'s rules that apply at ``point`` to this subject."""
    made = []
    node_subject = subject != FLOW_SUBJECT
    for rule in policy.rules:
        if point not in rule.points or per_node(rule) is not node_subject:
            continue
        try:
            if compiled(rule.when).execute(context) is not True:
                continue
            allowed, message = compiled(rule.check).execute(context) is True, rule.message
        except Exception as exc:  # noqa: BLE001  (a bad rule must refuse, not crash the run)
            allowed, message = False, f"{rule.message} (the rule failed: {exc})"
        made.append(Decision(policy=policy.policy, revision=revision, rule=rule.name,
                             mode=policy.mode, point=point, subject=subject, allowed=allowed,
                             message=message, input_hash=digest(context)))
    return made
