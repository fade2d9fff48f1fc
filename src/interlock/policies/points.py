"""The three places policies are checked: registration (and `interlock validate`), run
start, and node submit. Each returns the decisions (the caller audits them) and refuses on
an enforced violation: located problems at registration, `PolicyRefused` (422) at start,
a failed node at submit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from interlock import clock
from interlock.config.yamlpos import load_located
from interlock.errors import InterlockError, Problem, SpecError
from interlock.policies import context as ctx
from interlock.policies.engine import FLOW_SUBJECT, Decision, Subject, decide
from interlock.policies.load import covering
from interlock.policies.model import Point
from interlock.spec.models import Flow
from interlock.store import audit, facts

ACTOR = "policy"
ASKS = " (the node waits for an approval)"  # how a rule's remedy reads in the audit trail


class PolicyRefused(InterlockError):
    """An enforced rule does not hold; the message names the policy and the rule."""

    def __init__(self, decisions: list[Decision]):
        self.decisions = decisions
        super().__init__("; ".join(d.sentence() for d in decisions))


def evaluate(flow: Flow, point: Point, *, actor: str, run: dict[str, Any] | None = None,
             nodes: list[str] | None = None) -> list[Decision]:
    """Every applicable rule of every policy covering the flow's namespace, over the flow
    and over each of ``nodes`` (all of them by default; given ``nodes``, only those: a
    submit is about one node, the flow's own rules were checked at start)."""
    policies = covering(flow.namespace)
    if not policies:
        return []
    base = ctx.base(flow, point=point.value, now=clock.now(), actor=actor, run=run)
    subjects: list[tuple[str, dict[str, Any]]] = [(FLOW_SUBJECT, base)] if nodes is None \
        else []
    for node_id in flow.nodes if nodes is None else nodes:
        node = ctx.node_context(node_id, flow.nodes[node_id])
        subjects.append((f"node:{node_id}", {**base, "node": node,
                                             "system": ctx.system_context(node["system"])}))
    prepared = [Subject(name, seen) for name, seen in subjects]
    return [d for loaded in policies for subject in prepared
            for d in decide(loaded.policy, loaded.revision, point, subject)]


def registration_problems(flow: Flow, source: str, file: str, *,
                          actor: str) -> tuple[list[Problem], list[Decision]]:
    """Enforced violations as `file:line:col` problems at the node (or the flow's id)."""
    decisions = evaluate(flow, Point.REGISTER, actor=actor)
    refused = [d for d in decisions if d.refuses]
    if not refused:
        return [], decisions
    doc = load_located(source, file)
    return [doc.at(_path(d.subject), d.sentence()) for d in refused], decisions


def _path(subject: str) -> tuple[str, ...]:
    return ("id",) if subject == FLOW_SUBJECT else ("nodes", subject.split(":", 1)[1])


def check(flow: Flow, point: Point, *, actor: str, run: dict[str, Any] | None = None,
          nodes: list[str] | None = None) -> list[Decision]:
    """The decisions; PolicyRefused (carrying them) when an enforced rule does not hold."""
    decisions = evaluate(flow, point, actor=actor, run=run, nodes=nodes)
    if any(d.refuses for d in decisions):
        raise PolicyRefused([d for d in decisions if d.refuses])
    return decisions


@dataclass(frozen=True)
class SubmitVerdict:
    refused: str | None = None    # the node fails with these words
    ask: Decision | None = None   # the node waits for this rule's approval first


def at_submit(session: Session, flow: Flow, *, node_id: str, run_id: str, actor: str,
              run: dict[str, Any], approved_for: tuple[str, str] | None = None
              ) -> SubmitVerdict:
    """The submit point, in the caller's transaction: decisions audited; a refusal when an
    enforced rule does not hold, or the rule whose approval the node must wait for.

    ``approved_for`` is the (policy, rule) whose approval the node has already been given
    (its gate was imposed by that rule and released it). A node with a gate of its own that
    does not satisfy a rule asking for an approval is refused: one gate, not two."""
    try:
        decisions = evaluate(flow, Point.SUBMIT, actor=actor, run=run, nodes=[node_id])
    except SpecError as exc:  # a broken policy file refuses: a control not read is not a yes
        return SubmitVerdict(refused=f"the policies cannot be read: {exc}")
    record(session, decisions, target=f"runs/{run_id}")
    refused = [d.sentence() for d in decisions if d.refuses]
    asks = [d for d in decisions if d.asks and (d.policy, d.rule) != approved_for]
    if asks and (approved_for is not None or flow.nodes[node_id].gated):
        refused += [f"{d.sentence()} (its node has another approval gate)" for d in asks]
    elif len(asks) > 1:  # one gate per node: refused now, not after a first approval
        refused += [f"{d.sentence()} (more than one rule asks this node for an approval)"
                    for d in asks]
    if refused:
        return SubmitVerdict(refused="; ".join(refused))
    return SubmitVerdict(ask=asks[0] if asks else None)


def record(session: Session, decisions: list[Decision], *, target: str,
           origin: str = audit.LOCAL_ORIGIN) -> None:
    """Every decision, allowed or not, enforced or report-only, in the audit trail: one
    record per policy, point and subject, naming each rule's verdict (and a refusal's
    message), with the policy's revision and the hash of what the rules saw."""
    grouped: dict[tuple[str, str, str, str, str, str], list[Decision]] = {}
    for d in decisions:
        key = (d.policy, d.revision, d.mode.value, d.point.value, d.subject, d.input_hash)
        grouped.setdefault(key, []).append(d)
    for (policy, revision, mode, point, subject, input_hash), made in grouped.items():
        audit.record(session, actor=ACTOR, action=audit.Action.POLICY_DECISION, target=target,
                     origin=origin,
                     after={"policy": policy, "revision": revision, "mode": mode,
                            "point": point, "subject": subject, "input_hash": input_hash,
                            "allowed": all(d.allowed for d in made),
                            "rules": {d.rule: True if d.allowed else facts.short(
                                d.message + (ASKS if d.asks else "")) for d in made}})


@dataclass(frozen=True)
class ToolDecision:
    allowed: bool
    by: str | None = None      # `policy P rule R` of the first enforced denial
    message: str = ""
    decisions: int = 0


def at_tool(session: Session, flow: Flow, *, node_id: str, run_id: str, actor: str,
            tool: dict[str, Any], agent: dict[str, Any]) -> ToolDecision:
    """The `tool` point (`docs/agents.md`): an agent's tool call, judged in the caller's
    transaction and audited. A denial is told to the model; a rule asking for an approval
    denies too (a tool's approval is the tool's `approval: required`, not a rule's gate)."""
    policies = covering(flow.namespace)
    if not policies:
        return ToolDecision(allowed=True)
    node = ctx.node_context(node_id, flow.nodes[node_id])
    seen = {**ctx.base(flow, point=Point.TOOL.value, now=clock.now(), actor=actor),
            "node": node, "system": ctx.system_context(node["system"]),
            "tool": tool, "agent": agent}
    subject = Subject(f"node:{node_id}", seen)
    decisions = [d for loaded in policies
                 for d in decide(loaded.policy, loaded.revision, Point.TOOL, subject)]
    record(session, decisions, target=f"runs/{run_id}")
    denied = [d for d in decisions if d.violated]
    if not denied:
        return ToolDecision(allowed=True, decisions=len(decisions))
    first = denied[0]
    return ToolDecision(allowed=False, by=f"policy {first.policy} rule {first.rule}",
                        message=first.message, decisions=len(decisions))
