"""The outbox: work owed after a state change, in the change's own transaction, and the
`Dispatcher` protocol that carries it (implemented by `interlock.dispatch`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.config.env import settings
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


@dataclass(frozen=True)
class PollBatch:
    """In-flight attempts of one adapter kind, polled with one `Adapter.poll` call."""

    kind: str
    attempt_ids: list[int]


class Dispatcher(Protocol):
    """What carries work between handlers: Celery on Redis, or an in-process loop."""

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        """Hand ``work`` to some worker, now or after ``countdown`` seconds."""

    def send_polls(self, batch: PollBatch) -> None:
        """Hand a batch of polls to some worker."""


class OutboxOnly:
    """Sends nothing: the outbox row is sent by the next reconciler sweep after its lease."""

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        return None

    def send_polls(self, batch: PollBatch) -> None:
        return None


_carrier: ContextVar[Dispatcher | None] = ContextVar("interlock_dispatcher", default=None)


@contextmanager
def carried_by(dispatcher: Dispatcher) -> Iterator[None]:
    """Within it, `carrier()` is ``dispatcher``: an adapter call that starts work of its own
    (an agent's flow tool starts a run) hands it to the dispatcher that called it."""
    token = _carrier.set(dispatcher)
    try:
        yield
    finally:
        _carrier.reset(token)


def carrier() -> Dispatcher:
    return _carrier.get() or OutboxOnly()


def add(session: Session, work: Work, *, delay: float = 0.0) -> Work:
    at = clock.now()
    # A Core insert, not an ORM object: no unit of work on the hot path.
    session.execute(insert(OUTBOX).values(
        kind=work.kind.value, run_id=work.run_id, attempt_id=work.attempt_id, created_at=at,
        available_at=at + timedelta(seconds=delay) + lease(), sends=1))
    return work


def complete(session: Session, *, kind: TaskKind, run_id: str,
             attempt_id: int | None = None) -> None:
    """Drop the rows of work that this transaction has done."""
    complete_all(session, run_id, [Work(kind, run_id, attempt_id)])


def complete_all(session: Session, run_id: str, done: list[Work]) -> None:
    """Drop the rows of several kinds of work of one run, in one statement.

    A Work without an attempt id stands for every row of its kind for the run.
    """
    matches = [(Outbox.kind == w.kind.value) & (Outbox.attempt_id == w.attempt_id)
               if w.attempt_id is not None else Outbox.kind == w.kind.value for w in done]
    session.execute(delete(OUTBOX).where(Outbox.run_id == run_id, or_(*matches)))


def claim_overdue(session: Session, *, limit: int = 500) -> list[Work]:
    """Rows whose lease ran out: extend their lease and return them to be sent again."""
    now = clock.now()
    known = [kind.value for kind in TaskKind]  # a row of a retired kind is left alone
    rows = list(session.scalars(select(Outbox).where(Outbox.available_at <= now,
                                                     Outbox.kind.in_(known))
                                .order_by(Outbox.id).limit(limit)))
    if rows:
        session.execute(update(OUTBOX).where(Outbox.id.in_([r.id for r in rows]))
                        .values(available_at=now + lease(), sends=Outbox.sends + 1))
    return [Work(TaskKind(r.kind), r.run_id, r.attempt_id) for r in rows]
