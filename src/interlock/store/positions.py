"""How far a reader has got in a foreign system's stream (e.g. its asset events), kept in
the store so that a restart neither loses nor repeats what was read: the position is
written in the transaction that records what was read up to it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.store.base import dialect_insert
from interlock.store.tables import WatchPosition

POSITIONS = WatchPosition.__table__


def get(session: Session, key: str) -> str | None:
    return session.scalar(select(POSITIONS.c.position).where(POSITIONS.c.key == key))


def put(session: Session, key: str, position: str) -> None:
    now = clock.now()
    session.execute(dialect_insert(session, POSITIONS).values(
        key=key, position=position, updated_at=now).on_conflict_do_update(
        index_elements=["key"], set_={"position": position, "updated_at": now}))
