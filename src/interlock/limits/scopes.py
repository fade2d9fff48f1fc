"""Which limits hold for a run or a node: pure values built from the flow, the policy files
and the systems file. A scope's key names the lock row and what waiters wait for."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.config.systems import Systems
from interlock.policies.context import SYSTEM_KEY
from interlock.policies.load import covering
from interlock.policies.model import Mode
from interlock.spec.concurrency import Overflow
from interlock.spec.models import Flow

FLOW = "flow"
NAMESPACE = "namespace"
SYSTEM = "system"


@dataclass(frozen=True)
class Scope:
    kind: str          # FLOW | NAMESPACE | SYSTEM
    name: str          # `namespace/flow-id`, the namespace, or the system's name
    limit: int
    behavior: Overflow = Overflow.QUEUE

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    def describe(self) -> str:
        return f"{self.kind} {self.name} is at its concurrency limit of {self.limit}"


def run_scopes(flow: Flow) -> list[Scope]:
    """The limits a run of ``flow`` is admitted under, in lock order (sorted by key)."""
    scopes = []
    if flow.concurrency is not None:
        scopes.append(Scope(FLOW, flow.ref, flow.concurrency.limit, flow.concurrency.behavior))
    runs = namespace_limit(flow.namespace)
    if runs is not None:
        scopes.append(Scope(NAMESPACE, flow.namespace, runs))
    return sorted(scopes, key=lambda s: s.key)


def namespace_limit(namespace: str) -> int | None:
    """The smallest `concurrency.runs` of the enforced policies covering ``namespace``: a
    child namespace's policy can tighten its parent's limit, never loosen it."""
    limits = [p.policy.concurrency.runs for p in covering(namespace)
              if p.policy.mode is Mode.ENFORCE and p.policy.concurrency is not None]
    return min(limits) if limits else None


def system_scope(params: dict[str, object], systems: Systems) -> Scope | None:
    """The limit of the system a node's rendered `with:` names, if that system has one."""
    name = params.get(SYSTEM_KEY)
    if not isinstance(name, str) or name not in systems:
        return None
    limit = systems.get(name).concurrency
    return None if limit is None else Scope(SYSTEM, name, limit)
