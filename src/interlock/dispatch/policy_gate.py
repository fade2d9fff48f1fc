"""Policies at node submit, in the controller's transaction (before an attempt exists): an
enforced rule that does not hold fails the node with its words; a rule that says
`approval:` makes the node wait for that approval instead (`docs/policies.md`).

The gate a policy imposes is kept on the node's request (`details.imposed`); every later
pass reads it back onto the node (`store.approvals.with_imposed_gates`), so the planner
waits, times out, escalates and releases it exactly like a gate written in the flow.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy.orm import Session

from interlock.engine import gates
from interlock.engine.decisions import Decision, Plan, Submit
from interlock.engine.payload import payload_hash
from interlock.policies import points
from interlock.policies.engine import Decision as PolicyDecision
from interlock.states import NodeState
from interlock.store import approvals as approval_store
from interlock.store.runs import Loaded

STARTED_BY = "by"        # the run's trigger key naming who started it
UNKNOWN_STARTER = "trigger"


def verdict(session: Session, loaded: Loaded, node_id: str) -> points.SubmitVerdict:
    run = loaded.run
    trigger = run.trigger or {}
    by = trigger.get(STARTED_BY)
    return points.at_submit(
        session, loaded.flow, node_id=node_id, run_id=run.id,
        actor=by if isinstance(by, str) else UNKNOWN_STARTER,
        run={"inputs": run.inputs, "trigger": trigger},
        approved_for=approval_store.imposed_by(loaded.approvals.get(node_id)))


def ask(loaded: Loaded, submit: Submit, rule: PolicyDecision, state: NodeState,
        now: datetime, plan: Plan) -> list[Decision]:
    """The decisions that open the rule's request for the node (instead of submitting)."""
    gate = rule.approval
    assert gate is not None  # `asks` only for rules with `approval:`
    node_id = submit.node_id
    node = loaded.flow.nodes[node_id].model_copy(update={"approval": gate})
    loaded.flow = loaded.flow.model_copy(
        update={"nodes": {**loaded.flow.nodes, node_id: node}})  # open_request reads it
    # A policy gate's subject and body are plain text (`policies.model`), so the planner's
    # later rendering gives the same hash.
    asked = gates.Asked(submit.params, gate.subject, gate.body,
                        payload_hash(node_id, node, submit.params, gate.subject, gate.body),
                        imposed={"policy": rule.policy, "rule": rule.rule,
                                 "gate": gate.model_dump(mode="json")})
    view = replace(loaded.view().nodes[node_id], state=state)
    return gates.ask(node_id, gate, view, asked, now, plan)
