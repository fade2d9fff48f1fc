"""Approval requests and votes in the store: the only writer of a request's `state`.

`set_state` is a compare-and-set checked against `interlock.states.APPROVAL_TRANSITIONS`, so
a vote, the timer and a cancel racing for one request give exactly one outcome; every change
is an audit record (who, why, the payload hash it was about) in the same transaction.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.spec.approvals import ApprovalGate
from interlock.spec.models import Flow
from interlock.states import ApprovalState, transition
from interlock.store import audit, facts
from interlock.store.tables import ApprovalOrigin, ApprovalRequest, ApprovalVote, rowcount
from interlock.store.tables.approvals import APPROVAL_REQUESTS
from interlock.store.transitions import storable

MAX_COMMENT = 4000
REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex
IMPOSED = "imposed"  # `details` key: {policy, rule, gate} of a request a policy asked for
WAIVED = "waived"    # `details` key: actor -> which duty a policy let them approve despite
TOOL_CALL = "tool_call"  # `details` key: {step, tool} of an agent's tool call (not a gate)


def new_request(session: Session, *, actor: str, audit_origin: str = audit.LOCAL_ORIGIN,
                **values: Any) -> ApprovalRequest:
    """A pending request (``values`` are its columns); audited with its payload hash."""
    at = clock.now()
    row = ApprovalRequest(id=uuid.uuid4().hex, state=ApprovalState.PENDING.value,
                          created_at=at, decided_by=[], decision_inputs={},
                          **{"details": {}, "excluded": {}, "payload": {}, **values})
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action=audit.Action.APPROVAL_REQUESTED,
                 target=target(row), origin=audit_origin,
                 after={"subject": facts.short(row.subject), "payload_hash": row.payload_hash,
                        "rules": row.rules, "excluded": row.excluded,
                        **({WAIVED: row.details[WAIVED]} if WAIVED in row.details else {}),
                        "deadline": row.deadline.isoformat() if row.deadline else None,
                        "run": row.run_id, "node": row.node_id, "system": row.system})
    return row


def target(row: ApprovalRequest) -> str:
    return f"approvals/{row.id}"


def set_state(session: Session, row: ApprovalRequest, *, expected: ApprovalState,
              to: ApprovalState, actor: str, reason: str | None,
              origin: str = audit.LOCAL_ORIGIN, counted: dict[str, str] | None = None,
              **values: Any) -> bool:
    """Compare-and-set ``row`` from ``expected`` to ``to``; False when another change won.

    ``counted`` (actor -> rule) is what the audit record names for a decision."""
    transition(expected, to)
    reason = storable(reason)
    decided = to is not ApprovalState.PENDING
    result = session.execute(
        update(APPROVAL_REQUESTS)
        .where(ApprovalRequest.id == row.id, ApprovalRequest.state == expected.value)
        .values(state=to.value, reason=reason, decided_at=clock.now() if decided else None,
                **storable(values)))
    if rowcount(result) != 1:
        return False
    session.refresh(row)
    audit.record(session, actor=actor, action=audit.Action.APPROVAL_STATE, target=target(row),
                 origin=origin, before={"state": expected.value},
                 after={"state": to.value, "reason": facts.short(reason or ""),
                        "option": row.option, "counted": counted or {},
                        "payload_hash": row.payload_hash})
    return True


def get(session: Session, request_id: str, *, lock: bool = False) -> ApprovalRequest | None:
    """The request, or None (also for an id that is not one of ours: never sent to SQL)."""
    if not REQUEST_ID.fullmatch(request_id):
        return None
    query = select(ApprovalRequest).where(ApprovalRequest.id == request_id) \
        .execution_options(populate_existing=True)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalars(query).first()


def imposed_by(row: ApprovalRequest | None) -> tuple[str, str] | None:
    """The (policy, rule) that asked for this request, when a policy did (not the flow)."""
    imposed = (row.details or {}).get(IMPOSED) if row is not None else None
    return None if not imposed else (imposed["policy"], imposed["rule"])


def with_imposed_gates(flow: Flow, latest: dict[str, ApprovalRequest]) -> Flow:
    """``flow`` with the gates policies imposed on its nodes in this run (each kept on the
    node's request): the planner then waits, times out and releases them like its own."""
    imposed = {node_id: ApprovalGate.model_validate(row.details[IMPOSED]["gate"])
               for node_id, row in latest.items()
               if imposed_by(row) and node_id in flow.nodes
               and flow.nodes[node_id].approval is None}
    if not imposed:
        return flow
    nodes = {nid: node.model_copy(update={"approval": imposed[nid]}) if nid in imposed else node
             for nid, node in flow.nodes.items()}
    return flow.model_copy(update={"nodes": nodes})


def latest_by_node(session: Session, run_id: str) -> dict[str, ApprovalRequest]:
    """Each gated node's newest request in ``run_id`` (an agent's tool-call requests are
    the agent's to read, not the planner's: left out)."""
    rows = session.scalars(select(ApprovalRequest).where(ApprovalRequest.run_id == run_id)
                           .order_by(ApprovalRequest.created_at, ApprovalRequest.id)
                           .execution_options(populate_existing=True))
    return {row.node_id: row for row in rows
            if row.node_id is not None and TOOL_CALL not in (row.details or {})}


def add_vote(session: Session, *, row: ApprovalRequest, actor: str, groups: tuple[str, ...],
             option: str, inputs: dict[str, Any], comment: str, eligible: list[str],
             origin: str = audit.LOCAL_ORIGIN) -> ApprovalVote:
    vote = ApprovalVote(request_id=row.id, actor=actor, groups=list(groups), option=option,
                        inputs=inputs, comment=comment[:MAX_COMMENT], at=clock.now())
    session.add(vote)
    session.flush()
    audit.record(session, actor=actor, action=audit.Action.APPROVAL_VOTED, target=target(row),
                 origin=origin,
                 after={"option": option, "inputs": facts.bounded_each(inputs),
                        "comment": facts.short(comment), "rules": eligible,
                        "payload_hash": row.payload_hash,
                        **({"separation_waived": (row.details or {})[WAIVED][actor]}
                           if actor in (row.details or {}).get(WAIVED, {}) else {})})
    return vote


def votes_of(session: Session, request_id: str) -> list[ApprovalVote]:
    return list(session.scalars(select(ApprovalVote).where(ApprovalVote.request_id == request_id)
                                .order_by(ApprovalVote.id)))


def has_voted(session: Session, request_id: str, actor: str) -> bool:
    return session.scalar(select(ApprovalVote.id).where(
        ApprovalVote.request_id == request_id, ApprovalVote.actor == actor)) is not None


def nudge(session: Session, row: ApprovalRequest, *, escalate: bool,
          next_remind_at: datetime | None, actor: str) -> None:
    values: dict[str, Any] = {"next_remind_at": next_remind_at}
    if escalate:
        values["escalated_at"] = clock.now()
    session.execute(update(APPROVAL_REQUESTS).where(ApprovalRequest.id == row.id)
                    .values(**values))
    session.refresh(row)
    action = audit.Action.APPROVAL_ESCALATED if escalate else audit.Action.APPROVAL_REMINDED
    audit.record(session, actor=actor, action=action, target=target(row),
                 origin=audit.LOCAL_ORIGIN,
                 after={"rules": row.escalation if escalate else None,
                        "payload_hash": row.payload_hash})


@dataclass(frozen=True)
class RequestFilter:
    states: tuple[ApprovalState, ...] = ()
    namespace: str | None = None
    flow: str | None = None
    run_id: str | None = None
    origin: ApprovalOrigin | None = None
    namespaces: list[str] | None = None  # patterns the caller may see; None: all


def list_requests(session: Session, *, filters: RequestFilter,
                  limit: int) -> list[ApprovalRequest]:
    from interlock.store.runs import in_namespaces  # runs imports this module

    query = select(ApprovalRequest)
    if filters.states:
        query = query.where(ApprovalRequest.state.in_([s.value for s in filters.states]))
    if filters.namespace is not None:
        query = query.where(ApprovalRequest.namespace == filters.namespace)
    if filters.flow is not None:
        query = query.where(ApprovalRequest.flow == filters.flow)
    if filters.run_id is not None:
        query = query.where(ApprovalRequest.run_id == filters.run_id)
    if filters.origin is not None:
        query = query.where(ApprovalRequest.origin == filters.origin.value)
    if filters.namespaces is not None:
        query = query.where(in_namespaces(ApprovalRequest.namespace, filters.namespaces))
    return list(session.scalars(query.order_by(ApprovalRequest.created_at.desc(),
                                               ApprovalRequest.id.desc()).limit(limit)))
