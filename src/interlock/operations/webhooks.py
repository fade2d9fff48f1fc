"""A business event starts a flow through its `webhook:` trigger."""

from __future__ import annotations

from typing import Any

from interlock.policies import points as policy_points
from interlock.policies.points import PolicyRefused
from interlock.store import audit, facts, outbox
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher
from interlock.store.tables import TaskKind
from interlock.triggers import firing


def fire_webhook(*, namespace: str, flow_id: str, key: str, payload: dict[str, Any],
                 origin: str, idempotency_key: str | None, dispatcher: Dispatcher,
                 body: bytes = b"", signature: str | None = None) -> tuple[str, bool]:
    """Start the flow (or find the run a repeated Idempotency-Key started); returns the
    run id and whether it is new. A refused signature and a policy's refusal are audited
    (after the rollback of the request's transaction), then re-raised."""
    try:
        with session_scope() as session:
            run_id, created = firing.fire_webhook(
                session, namespace=namespace, flow_id=flow_id, key=key, payload=payload,
                origin=origin, idempotency_key=idempotency_key, body=body,
                signature=signature)
    except firing.WebhookRefused as exc:
        with session_scope() as session:
            audit.record(session, actor=f"unverified:webhook/{key}"[:150],
                         action=audit.Action.TRIGGER_REFUSED,
                         target=f"{namespace}/{flow_id}"[:300],
                         after={"reason": facts.short(str(exc)),
                                "body": facts.fact(body)}, origin=origin)
        raise
    except PolicyRefused as exc:  # no run; the refusal is a decision too
        with session_scope() as session:
            policy_points.record(session, exc.decisions, target=f"flows/{namespace}/{flow_id}",
                                 origin=origin)
        raise
    if created:
        dispatcher.send(outbox.Work(TaskKind.ADVANCE, run_id))
    return run_id, created
