"""What people outside Interlock hear about a request: a notification per change, written in
the transaction that made the change and sent later by `interlock.notify` (never blocking
the run). Payloads carry facts (ids, subject, state, the payload hash), not the payload."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from interlock import notify
from interlock.notify import NotifyEvent
from interlock.store.tables import ApprovalRequest


def _facts(row: ApprovalRequest) -> dict[str, Any]:
    return {"request": row.id, "state": row.state, "origin": row.origin, "flow": row.flow,
            "run": row.run_id, "node": row.node_id, "system": row.system,
            "options": row.options, "option": row.option, "decided_by": row.decided_by,
            "reason": row.reason, "payload_hash": row.payload_hash,
            "deadline": row.deadline.isoformat() if row.deadline else None}


def _send(session: Session, event: NotifyEvent, row: ApprovalRequest) -> None:
    notify.enqueue(session, event=event, namespace=row.namespace, subject=row.subject,
                   payload=_facts(row), link=row.link)


def requested(session: Session, row: ApprovalRequest) -> None:
    _send(session, NotifyEvent.APPROVAL_REQUESTED, row)


def decided(session: Session, row: ApprovalRequest) -> None:
    _send(session, NotifyEvent.APPROVAL_DECIDED, row)


def nudged(session: Session, row: ApprovalRequest, *, escalated: bool) -> None:
    _send(session, NotifyEvent.APPROVAL_ESCALATED if escalated
          else NotifyEvent.APPROVAL_REMINDER, row)
