"""The outbox: work owed after a state change, in the change's own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.config import settings
from interlock.store.tables import OUTBOX, Outbox, TaskKind


def lease() -> timedelta:
    """A sent row not completed within this long is sent again (its worker likely died)."""
    return timedelta(seconds=settings().lease_s)


@dataclass(frozen=True)
class Work:
    """One task to hand to dispatch."""

    kind: TaskKind
    run_id: str
    attempt_id: int | None = None


def add(session: Session, work: Work, *, delay: float = 0.0) -> Work:
    at = clock.now()
    session.add(Outbox(kind=work.kind.value, run_id=work.run_id, attempt_id=work.attempt_id,
                       created_at=at, available_at=at + timedelta(seconds=delay) + lease(),
                       sends=1))
    return work


def complete(session: Session, *, kind: TaskKind, run_id: str,
             attempt_id: int | None = None) -> None:
    """Drop the rows of work that this transaction has done."""
    query = delete(OUTBOX).where(Outbox.kind == kind.value, Outbox.run_id == run_id)
    if attempt_id is not None:
        query = query.where(Outbox.attempt_id == attempt_id)
    session.execute(query)


def claim_overdue(session: Session, *, limit: int = 500) -> list[Work]:
    """Rows whose lease ran out: extend their lease and return them to be sent again."""
    now = clock.now()
    rows = list(session.scalars(select(Outbox).where(Outbox.available_at <= now)
                                .order_by(Outbox.id).limit(limit)))
    if rows:
        session.execute(update(OUTBOX).where(Outbox.id.in_([r.id for r in rows]))
                        .values(available_at=now + lease(), sends=Outbox.sends + 1))
    return [Work(TaskKind(r.kind), r.run_id, r.attempt_id) for r in rows]
