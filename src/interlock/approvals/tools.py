"""An agent's tool call put to people (`docs/agents.md`).

A request of origin `interlock` on the run and the agent node, whose payload is the tool's
name and exact arguments (hashed by `engine.payload` with the node's definition, the subject
and the body, so a vote binds those arguments and nothing else), whose rules are the tool's
`approval:` (one `approver` by default), with the separation of duties of a gate plus the
agent itself. The request is the agent's to read (`look`), never the planner's:
`store.approvals.latest_by_node` leaves it out. While it is pending the node stays `running`
(its attempt holds a session) and says so: the attempt's `remote_status` is
`approval_wait` and the node's `waiting_for` names the request.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.access.permissions import Role
from interlock.approvals import gates, notices, people
from interlock.engine.payload import payload_hash
from interlock.errors import NotFound
from interlock.policies.load import waived_duties
from interlock.spec.approvals import APPROVE, REJECT, QuorumRule
from interlock.states import ApprovalState, NodeState
from interlock.store import approvals as store
from interlock.store.flows import flow_of_run
from interlock.store.runs import lock_run
from interlock.store.tables import (
    ApprovalOrigin,
    ApprovalRequest,
    Attempt,
    FlowRevision,
    NodeRun,
    Run,
)
from interlock.store.tables.runs import ATTEMPTS, NODE_RUNS

WAIT_STATUS = "approval_wait"   # the attempt's remote_status while a call waits
WAITING_FOR = "approval:"       # the node's waiting_for: approval:<request id>
DEFAULT_RULES = [{"role": Role.APPROVER.value}]


def rules_problem(rules: list[dict[str, Any]]) -> str | None:
    """Why a tool's `approval.rules` cannot be a request's rules, if they cannot."""
    known = {r.value for r in Role}
    for n, rule in enumerate(rules):
        try:
            checked = QuorumRule.model_validate(rule)
        except ValidationError as exc:
            return f"approval rule {n + 1}: {exc.errors()[0]['msg']}"
        if checked.role is not None and checked.role not in known:
            return f"approval rule {n + 1}: role `{checked.role}` is not a role"
    return None


def open_request(session: Session, *, run_id: str, node_id: str, attempt: int, step_key: str,
                 tool: dict[str, Any], rules: list[dict[str, Any]],
                 timeout_s: float | None) -> ApprovalRequest:
    """The request for one tool call (in the transaction that records the waiting step)."""
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run `{run_id}` does not exist")
    flow = flow_of_run(session, run)
    revision = session.get(FlowRevision, run.flow_revision_id)
    excluded, waived = people.excluded(run, revision, waived_duties(run.namespace))
    agent = f"agent:{run_id}/{node_id}"
    excluded.setdefault(agent, "the agent that asked")
    name, arguments = tool["name"], tool["arguments"]
    payload = {"tool": name, "arguments": arguments, "kind": tool.get("kind"),
               "target": tool.get("target"), "step": step_key}
    subject = f"Agent `{node_id}` of {run.flow_id} asks to call `{name}`"
    body = (f"Tool `{name}` ({tool.get('kind')} {tool.get('target')}), step {step_key}, "
            f"with these exact arguments:\n"
            f"{json.dumps(arguments, indent=2, sort_keys=True, ensure_ascii=False)}")[:20_000]
    details: dict[str, Any] = {store.TOOL_CALL: {"step": step_key, "tool": name,
                                                 "attempt": attempt}}
    if waived:
        details[store.WAIVED] = waived
    row = store.new_request(
        session, actor=agent, origin=ApprovalOrigin.INTERLOCK.value, namespace=run.namespace,
        flow=f"{run.namespace}/{run.flow_id}", run_id=run_id, node_id=node_id,
        subject=subject, body=body, options=[APPROVE, REJECT], reject_options=[REJECT],
        inputs_spec={}, rules=[QuorumRule.model_validate(r).model_dump(mode="json")
                               for r in rules or DEFAULT_RULES],
        escalation=None, payload=payload,
        payload_hash=payload_hash(node_id, flow.nodes[node_id], payload, subject, body),
        excluded=excluded, requested_by=agent,
        deadline=clock.now() + timedelta(seconds=timeout_s) if timeout_s else None,
        details=details)
    notices.requested(session, row)
    _show_waiting(session, run_id, node_id, attempt, row.id)
    return row


def look(session: Session, request_id: str) -> ApprovalRequest | None:
    """The request as it stands: past its deadline it times out here (a compare-and-set
    under the run's lock, as a vote takes it); an approval is counted again with who the
    voters are now, and goes back to pending if no longer met (as before a gate submits)."""
    row = store.get(session, request_id)
    if row is None or row.state not in (ApprovalState.PENDING.value,
                                        ApprovalState.APPROVED.value):
        return row
    due = row.deadline is not None and row.deadline <= clock.now()
    if row.state == ApprovalState.PENDING.value and not due:
        return row
    if row.run_id is not None:
        lock_run(session, row.run_id)
    row = store.get(session, request_id, lock=True)
    assert row is not None
    if row.state == ApprovalState.PENDING.value and due:
        store.set_state(session, row, expected=ApprovalState.PENDING,
                        to=ApprovalState.TIMED_OUT, actor=gates.ACTOR,
                        reason="nobody decided before the deadline")
        notices.decided(session, row)
    elif row.state == ApprovalState.APPROVED.value:
        voters = [v for v in gates.current_voters(session, row, option=row.option,
                                                  inputs=row.decision_inputs) if v]
        if not gates.met(row, voters):
            lost = sorted(set(row.decided_by) - {v.actor for v in voters})
            store.set_state(session, row, expected=ApprovalState.APPROVED,
                            to=ApprovalState.PENDING, actor=gates.ACTOR,
                            reason=f"checked again before the tool ran: "
                                   f"{', '.join(lost) or 'a voter'} no longer counts",
                            option=None, decided_by=[], decision_inputs={})
    return row


def told(session: Session, row: ApprovalRequest) -> str:
    """What the model reads of a decision that did not let the call run."""
    if row.state == ApprovalState.REJECTED.value:
        who = ", ".join(row.decided_by) or "someone"
        comments = [v.comment for v in store.votes_of(session, row.id)
                    if v.actor in row.decided_by and v.comment]
        return f"rejected by {who}" + (f": {comments[0]}" if comments else "")
    if row.state == ApprovalState.TIMED_OUT.value:
        return "timed out: nobody approved this call before its deadline; it did not run"
    return f"not approved ({row.state}): the call did not run"


def shown_done(session: Session, run_id: str, node_id: str, attempt: int) -> None:
    """The wait is over: the attempt runs again (or ends), the node waits for nothing."""
    session.execute(update(NODE_RUNS).where(
        NodeRun.run_id == run_id, NodeRun.node_id == node_id,
        NodeRun.waiting_for.startswith(WAITING_FOR)).values(waiting_for=None))
    session.execute(update(ATTEMPTS).where(
        Attempt.run_id == run_id, Attempt.node_id == node_id, Attempt.number == attempt,
        Attempt.remote_status == WAIT_STATUS).values(remote_status=NodeState.RUNNING.value))


def _show_waiting(session: Session, run_id: str, node_id: str, attempt: int,
                  request_id: str) -> None:
    session.execute(update(NODE_RUNS).where(
        NodeRun.run_id == run_id, NodeRun.node_id == node_id,
        NodeRun.state == NodeState.RUNNING.value)
        .values(waiting_for=f"{WAITING_FOR}{request_id}"))
    session.execute(update(ATTEMPTS).where(
        Attempt.run_id == run_id, Attempt.node_id == node_id, Attempt.number == attempt,
        Attempt.state == NodeState.RUNNING.value).values(remote_status=WAIT_STATUS))


def cancel_open(session: Session, *, run_id: str, node_id: str, attempt: int,
                reason: str) -> None:
    """The agent ended (cancelled, failed, out of budget) while a call waited: the request
    is cancelled, so nobody approves a call that will never run."""
    for row in session.query(ApprovalRequest).filter(
            ApprovalRequest.run_id == run_id, ApprovalRequest.node_id == node_id,
            ApprovalRequest.state == ApprovalState.PENDING.value):
        if (row.details or {}).get(store.TOOL_CALL, {}).get("attempt") != attempt:
            continue
        if store.set_state(session, row, expected=ApprovalState.PENDING,
                           to=ApprovalState.CANCELLED, actor=gates.ACTOR, reason=reason):
            notices.decided(session, row)
    shown_done(session, run_id, node_id, attempt)
