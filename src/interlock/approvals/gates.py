"""A run's approval requests, for the controller: opened, closed and nudged as the planner
decides, and approved ones checked again before the work they release is submitted.

Everything here runs in the controller's transaction, under the run's lock, so a request's
outcome and the node's next state commit together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from interlock.approvals import notices, people
from interlock.approvals.quorum import Voter, tally
from interlock.engine.decisions import CloseApproval, NudgeApproval, OpenApproval
from interlock.policies.load import waived_duties
from interlock.spec.approvals import ApprovalGate, QuorumRule
from interlock.states import ApprovalState, NodeState
from interlock.store import approvals as store
from interlock.store.runs import Loaded
from interlock.store.tables import ApprovalOrigin, ApprovalRequest, FlowRevision

ACTOR = "planner"


def open_request(session: Session, loaded: Loaded, decision: OpenApproval) -> ApprovalRequest:
    gate = loaded.flow.nodes[decision.node_id].approval
    if decision.imposed is not None:
        gate = ApprovalGate.model_validate(decision.imposed["gate"])
    assert gate is not None  # requests are opened for gated nodes, or as a policy asks
    run = loaded.run
    revision = session.get(FlowRevision, run.flow_revision_id)
    excluded, waived = people.excluded(run, revision, waived_duties(run.namespace))
    details = {store.IMPOSED: decision.imposed} if decision.imposed else {}
    if waived:
        details[store.WAIVED] = waived
    row = store.new_request(
        session, actor=ACTOR, origin=ApprovalOrigin.INTERLOCK.value, namespace=run.namespace,
        flow=f"{run.namespace}/{run.flow_id}", run_id=run.id, node_id=decision.node_id,
        subject=decision.subject or f"Approve `{decision.node_id}` of {run.flow_id}",
        body=decision.body, options=list(gate.options), reject_options=list(gate.reject_options),
        inputs_spec={k: v.model_dump(mode="json") for k, v in gate.inputs.items()},
        rules=[r.model_dump(mode="json") for r in gate.rules],
        escalation=[r.model_dump(mode="json") for r in gate.escalate.rules]
        if gate.escalate else None,
        payload=decision.params, payload_hash=decision.payload_hash,
        excluded=excluded, requested_by=ACTOR,
        deadline=decision.deadline, escalate_at=decision.escalate_at,
        next_remind_at=decision.next_remind_at,
        details=details)
    loaded.approvals[decision.node_id] = row
    notices.requested(session, row)
    return row


def close_request(session: Session, loaded: Loaded, decision: CloseApproval) -> bool:
    row = loaded.approvals[decision.node_id]
    changed = store.set_state(session, row, expected=decision.expected, to=decision.to,
                              actor=ACTOR, reason=decision.reason)
    if changed:
        notices.decided(session, row)
    return changed


def nudge_request(session: Session, loaded: Loaded, decision: NudgeApproval) -> None:
    row = loaded.approvals[decision.node_id]
    store.nudge(session, row, escalate=decision.escalate,
                next_remind_at=decision.next_remind_at, actor=ACTOR)
    notices.nudged(session, row, escalated=decision.escalate)


def rules_of(row: ApprovalRequest) -> tuple[list[QuorumRule], list[QuorumRule]]:
    """The request's rules, and its escalation rules once escalated (else [])."""
    rules = [QuorumRule.model_validate(r) for r in row.rules]
    escalation = [QuorumRule.model_validate(r) for r in row.escalation or ()] \
        if row.escalated_at is not None else []
    return rules, escalation


def recheck(session: Session, loaded: Loaded) -> bool:
    """Approved requests of nodes about to be released, counted again with who the voters
    are now; a request no longer met is reopened (pending) and audited. True if any was."""
    reopened = False
    for node_id, row in loaded.approvals.items():
        waiting = loaded.nodes[node_id].state == NodeState.APPROVAL_WAIT.value
        if not waiting or row.state != ApprovalState.APPROVED.value:
            continue
        voters = [v for v in current_voters(session, row, option=row.option,
                                            inputs=row.decision_inputs) if v is not None]
        if met(row, voters):
            continue
        lost = sorted(set(row.decided_by) - {v.actor for v in voters})
        reason = (f"checked again before submit: {', '.join(lost) or 'a voter'} no longer "
                  "counts (role, group or token gone)")
        store.set_state(session, row, expected=ApprovalState.APPROVED,
                        to=ApprovalState.PENDING, actor=ACTOR, reason=reason, option=None,
                        decided_by=[], decision_inputs={})
        reopened = True
    return reopened


def current_voters(session: Session, row: ApprovalRequest, *, option: str | None,
                   inputs: dict) -> list[Voter | None]:
    """The voters for (``option``, ``inputs``) as they are now (None: no longer anyone)."""
    return [people.voter_now(session, vote.actor, vote.groups, row.namespace)
            for vote in store.votes_of(session, row.id)
            if vote.option == option and vote.inputs == inputs
            and vote.actor not in row.excluded]


def met(row: ApprovalRequest, voters: list[Voter]) -> bool:
    rules, escalation = rules_of(row)
    return tally(rules, voters).met or bool(escalation and tally(escalation, voters).met)


def gate_of(loaded: Loaded, node_id: str) -> ApprovalGate | None:
    return loaded.flow.nodes[node_id].approval
