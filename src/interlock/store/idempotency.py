"""Once-only starts: a unique key per flow and what started it (an API request's
Idempotency-Key, a webhook delivery's, a trigger's firing). The first transaction to insert
the key claims it and binds its run to it; any later one (even concurrent: the unique index
makes it wait for the first to commit) gets the first one's run instead of a new one.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.store.tables import TriggerFiring

API_SOURCE = "api"  # POST /runs


def request_key(flow_ref: str, *, actor: str, key: str, source: str = API_SOURCE) -> str:
    """The firing key of a client's Idempotency-Key: its own per caller and per flow (one
    client's key never replays another's run), hashed to a bounded length."""
    digest = hashlib.sha256(f"{actor}\0{key}".encode()).hexdigest()[:40]
    return f"{flow_ref}#{source}:{digest}"


def claim(session: Session, *, key: str, namespace: str, flow_id: str) -> bool:
    """True when this transaction now holds ``key`` (bind the run to it); False when an
    earlier one did (`earlier_run` says which run it started)."""
    try:
        with session.begin_nested():
            session.add(TriggerFiring(key=key, namespace=namespace, flow_id=flow_id,
                                      fired_at=clock.now()))
    except IntegrityError:
        return False
    return True


def earlier_run(session: Session, key: str) -> str:
    earlier = session.scalar(select(TriggerFiring.run_id).where(TriggerFiring.key == key))
    assert earlier is not None  # bound in the transaction that claimed it
    return earlier


def bind(session: Session, *, key: str, run_id: str) -> None:
    session.execute(update(TriggerFiring).where(TriggerFiring.key == key).values(run_id=run_id))
