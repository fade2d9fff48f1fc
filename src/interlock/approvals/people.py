"""Who a voter is to the rules, now: their roles on the namespace and their groups, and who
may not approve a request at all (separation of duties).

At vote time the caller's own principal answers. Before the approved work is submitted the
store answers again (`voter_now`): a revoked or expired token, or a role taken away, no
longer counts. An OIDC identity is checked against the bindings file with the groups it had
when voting: a group removed at the identity provider is seen at that person's next login.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from interlock.access import tokens
from interlock.access.bindings import load_bindings
from interlock.access.permissions import Role
from interlock.access.principals import Principal, PrincipalKind
from interlock.approvals.quorum import Voter
from interlock.config.env import settings
from interlock.errors import Problem
from interlock.policies.model import Duty
from interlock.spec.models import Flow
from interlock.store.tables import FlowRevision, Run

# Principals whose rights do not live in the store: the CLI on the store's machine (it holds
# the database anyway) and local development. They keep what they had.
_UNCHANGING = frozenset({PrincipalKind.LOCAL, PrincipalKind.DEVELOPER})
TOKEN_KINDS = frozenset({PrincipalKind.USER, PrincipalKind.SERVICE})
CLI_KIND = "cli"  # the audit actor of the local CLI (`interlock.cli.common.CLI_ACTOR`)


def voter_of(principal: Principal, namespace: str) -> Voter:
    return Voter(actor=principal.actor, groups=frozenset(principal.groups),
                 roles=frozenset(r.value for r in principal.roles_on(namespace)))


def voter_now(session: Session, actor: str, groups: Sequence[str],
              namespace: str) -> Voter | None:
    """The voter ``actor`` as the store and the bindings file see them now; None when they
    can no longer act at all."""
    kind_name, _, name = actor.partition(":")
    try:
        kind = PrincipalKind(kind_name)
    except ValueError:
        return None
    if kind in _UNCHANGING:
        return Voter(actor=actor, groups=frozenset(groups), roles=frozenset({"admin"}))
    if kind in TOKEN_KINDS:
        principal = tokens.current(session, name)
        return None if principal is None or principal.kind is not kind \
            else voter_of(principal, namespace)
    bindings = load_bindings(settings().oidc_bindings_file).for_identity(name, groups)
    return voter_of(Principal(name=name, kind=kind, bindings=bindings, groups=tuple(groups)),
                    namespace)


def unknown_roles(flow: Flow, file: str) -> list[Problem]:
    """Rules naming a role that does not exist (the flow model cannot know the roles: they
    are access's); checked when a flow is registered."""
    known = {r.value for r in Role}
    problems = []
    for node_id, node in flow.nodes.items():
        gate = node.approval
        rules = [*(gate.rules if gate else ()), *(gate.escalate.rules if gate and gate.escalate
                                                  else ())]
        for rule in rules:
            if rule.role is not None and rule.role not in known:
                problems.append(Problem(file, 0, 0, (
                    f"node `{node_id}`: approval rule role `{rule.role}` is not a role; use "
                    f"one of {', '.join(sorted(known))}, or `group:` for a team")))
    return problems


def excluded(run: Run, revision: FlowRevision | None,
             waived: Mapping[Duty, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """Who may not approve a gate of ``run``, and why: whoever started it (a person, or the
    agent that asked) and the author of the flow revision it runs; and whom a policy lets
    approve all the same (``waived``: duty -> the policy), with why, to be recorded."""
    trigger = run.trigger or {}
    holders = [(Duty.STARTER, trigger.get("by"), "started the run"),
               (Duty.AGENT, trigger.get("agent"), "the agent that asked"),
               (Duty.AUTHOR, revision.created_by if revision else None,
                "wrote the flow revision")]
    out: dict[str, str] = {}
    allowed: dict[str, str] = {}
    for duty, who, why in holders:
        if not isinstance(who, str) or not who:
            continue
        policy = (waived or {}).get(duty)
        for name in same_person(who):
            if policy is None:
                out.setdefault(name, why)
            else:
                allowed.setdefault(name, f"{why}; waived by policy `{policy}`")
    for name in out:  # one duty kept is enough to exclude
        allowed.pop(name, None)
    return out, allowed


def same_person(actor: str) -> list[str]:
    """Every actor name ``actor`` goes by: the local CLI records what it does as
    `cli:<login>` and votes as the principal `local:<login>`, one person either way."""
    kind, _, name = actor.partition(":")
    if kind == CLI_KIND and name:
        return [actor, f"{PrincipalKind.LOCAL.value}:{name}"]
    return [actor]
