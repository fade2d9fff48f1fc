"""Flow triggers that fire on work finishing elsewhere (`after:`).

A firing is a unique row (`trigger_firings.key`) written in the transaction that creates
the run, so the same foreign run finishing (reported twice, by push and by poll, or by
two API replicas) starts the flow once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.errors import NotFound
from interlock.spec.inputs import InputError, check_inputs
from interlock.spec.models import After, Flow
from interlock.store import audit
from interlock.store import runs as run_store
from interlock.store.flows import get_revision, list_flows, load_flow_of
from interlock.store.tables import Attempt, ExternalRun, FlowRevision, Run, TriggerFiring

log = logging.getLogger(__name__)
ACTOR = "trigger"


@dataclass(frozen=True)
class Fired:
    flow: str
    run_id: str


def matches(after: After, run: ExternalRun) -> bool:
    job = after.dag_id or after.job
    return (after.system == run.system and job == run.job_id
            and after.state in (run.remote_status, run.state))


def after_foreign_run(session: Session, run: ExternalRun, *, origin: str) -> list[Fired]:
    """Start every flow with an `after:` trigger this finished foreign run satisfies."""
    starter = _flow_that_started(session, run)
    fired = []
    for revision in list_flows(session):
        flow = load_flow_of(revision)
        if flow.ref == starter:
            continue  # a flow is not re-triggered by a run it started itself
        for trigger in flow.triggers:
            if trigger.after is not None and matches(trigger.after, run):
                context = {"type": "after", "system": run.system, "job_id": run.job_id,
                           "external_id": run.external_id, "state": run.remote_status,
                           "run_type": run.run_type}
                key = f"{flow.ref}#after:{run.system}/{run.job_id}/{run.external_id}"
                if (started := _fire(session, revision, flow, key, context, origin)):
                    fired.append(started)
    return fired


def _flow_that_started(session: Session, run: ExternalRun) -> str | None:
    if run.attempt_id is None:
        return None
    row = session.execute(select(Run.namespace, Run.flow_id).join(
        Attempt, Attempt.run_id == Run.id).where(Attempt.id == run.attempt_id)).first()
    return f"{row[0]}/{row[1]}" if row else None


def _fire(session: Session, revision: FlowRevision, flow: Flow, key: str,
          context: dict[str, Any], origin: str) -> Fired | None:
    try:
        inputs = check_inputs(flow.inputs, {})
    except InputError as exc:
        audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_REFUSED, target=flow.ref,
                     after={"trigger": context, "problems": exc.problems}, origin=origin)
        log.warning("trigger %s cannot start %s: inputs %s", key, flow.ref, exc.problems)
        return None
    try:
        with session.begin_nested():
            session.add(TriggerFiring(key=key, namespace=flow.namespace, flow_id=flow.id,
                                      fired_at=clock.now()))
    except IntegrityError:
        return None  # fired already
    run = run_store.create_run(session, revision=revision, inputs=inputs, trigger=context,
                               actor=ACTOR)
    session.execute(update(TriggerFiring).where(TriggerFiring.key == key)
                    .values(run_id=run.id))
    audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_FIRED, target=flow.ref,
                 after={"run_id": run.id, "trigger": context}, origin=origin)
    return Fired(flow.ref, run.id)


def fire_webhook(session: Session, *, namespace: str, flow_id: str, key: str,
                 payload: dict[str, Any], origin: str,
                 idempotency_key: str | None = None) -> tuple[str, bool]:
    """Start the flow whose `webhook:` trigger has ``key``; the payload is its inputs.

    Returns (run id, created). With an ``idempotency_key``, a repeated delivery returns
    the run the first one started. Raises NotFound (no such flow or key: the same answer,
    so keys cannot be probed) and InputError (a field the inputs refuse).
    """
    revision = get_revision(session, namespace=namespace, flow_id=flow_id)
    flow = load_flow_of(revision)
    if not any(t.webhook is not None and t.webhook.key == key for t in flow.triggers):
        raise NotFound(f"no webhook `{key}` on flow `{namespace}/{flow_id}`")
    inputs = check_inputs(flow.inputs, payload)
    context = {"type": "webhook", "key": key, "origin": origin}
    if idempotency_key:
        firing = f"{flow.ref}#webhook:{key}:{idempotency_key}"
        context["idempotency_key"] = idempotency_key
        try:
            with session.begin_nested():
                session.add(TriggerFiring(key=firing, namespace=flow.namespace,
                                          flow_id=flow.id, fired_at=clock.now()))
        except IntegrityError:
            earlier = session.scalar(select(TriggerFiring.run_id)
                                     .where(TriggerFiring.key == firing))
            assert earlier is not None
            return earlier, False
    run = run_store.create_run(session, revision=revision, inputs=inputs, trigger=context,
                               actor=ACTOR)
    if idempotency_key:
        session.execute(update(TriggerFiring).where(TriggerFiring.key == firing)
                        .values(run_id=run.id))
    audit.record(session, actor=ACTOR, action=audit.Action.TRIGGER_FIRED, target=flow.ref,
                 after={"run_id": run.id, "trigger": context}, origin=origin)
    return run.id, True
