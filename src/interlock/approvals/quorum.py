"""Whether the votes for one decision meet a gate's rules: pure, no I/O.

Each rule asks for `count` distinct people; all rules must be met. A person counts toward
one rule only (a maximum matching of people to rule seats), so "one from compliance and one
from risk" is never met by one person who is in both groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from interlock.spec.approvals import QuorumRule


@dataclass(frozen=True)
class Voter:
    """A person as the rules see them: their actor name, groups and roles on the namespace."""

    actor: str
    groups: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.actor.split(":", 1)[-1]


def counts_for(rule: QuorumRule, voter: Voter) -> bool:
    """Whether ``voter`` is among the people ``rule`` counts (role, group or named)."""
    if rule.role is not None and rule.role in voter.roles:
        return True
    if rule.group is not None and rule.group in voter.groups:
        return True
    return any(p in (voter.actor, voter.name) for p in rule.principals)


@dataclass(frozen=True)
class Tally:
    met: bool
    counted: dict[str, str] = field(default_factory=dict)   # actor -> the rule it filled
    missing: dict[str, int] = field(default_factory=dict)   # rule -> people still needed

    def summary(self) -> str:
        if self.met:
            return "every rule is met"
        return "; ".join(f"{rule}: {n} more" for rule, n in self.missing.items())


def tally(rules: Sequence[QuorumRule], voters: Sequence[Voter]) -> Tally:
    """The largest assignment of distinct voters to rule seats (augmenting paths: rules ask
    for at most 20 people each, so this is tiny)."""
    seats = [(i, rule) for i, rule in enumerate(rules) for _ in range(rule.count)]
    seat_of: dict[int, int] = {}  # voter index -> seat index
    holder: dict[int, int] = {}   # seat index -> voter index

    def place(v: int, seen: set[int]) -> bool:
        for s, (_, rule) in enumerate(seats):
            if s in seen or not counts_for(rule, voters[v]):
                continue
            seen.add(s)
            if s not in holder or place(holder[s], seen):
                holder[s], seat_of[v] = v, s
                return True
        return False

    for v in range(len(voters)):
        place(v, set())
    filled = [0] * len(rules)
    for s in holder:
        filled[seats[s][0]] += 1
    missing = {_label(rules, i): rule.count - filled[i]
               for i, rule in enumerate(rules) if filled[i] < rule.count}
    counted = {voters[v].actor: _label(rules, seats[s][0]) for v, s in seat_of.items()}
    return Tally(met=not missing, counted=counted, missing=missing)


def _label(rules: Sequence[QuorumRule], index: int) -> str:
    label = rules[index].label
    clash = sum(1 for r in rules if r.label == label) > 1
    return f"{label} (rule {index + 1})" if clash else label


def eligible(rules: Sequence[QuorumRule], voter: Voter) -> list[str]:
    """The rules ``voter`` could count toward (empty: this person cannot decide)."""
    return [_label(rules, i) for i, rule in enumerate(rules) if counts_for(rule, voter)]
