"""The store's side of `interlock.adapters.launches`: launch claims as rows of `launch_claims`.

The claim is a unique insert (`ON CONFLICT DO NOTHING`); a lease that ran out is taken over
by a compare-and-set on the holder and its lease. On PostgreSQL a racing insert waits for the
first one's commit and then does nothing; on SQLite transactions are serialised anyway
(`BEGIN IMMEDIATE`). No transaction is held while the adapter launches.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.launches import ClaimState, provide
from interlock.store.base import dialect_insert
from interlock.store.db import session_scope
from interlock.store.tables import LaunchClaim, rowcount

CLAIMS = LaunchClaim.__table__


def _insert(session: Session) -> Any:
    return dialect_insert(session, CLAIMS)


class StoreLaunchClaims:
    def claim(self, key: str, *, owner: str, lease_s: float) -> ClaimState:
        now = clock.now()
        until = now + timedelta(seconds=lease_s)
        with session_scope() as session:
            inserted = session.execute(
                _insert(session).values(key=key, owner=owner, expires_at=until, claimed_at=now)
                .on_conflict_do_nothing(index_elements=["key"]).returning(CLAIMS.c.key)).first()
            if inserted is not None:
                return ClaimState(claimed=True)
            row = session.get(LaunchClaim, key, populate_existing=True)
            assert row is not None  # rows are deleted only by their holder, before a result
            if row.result is not None:
                return ClaimState(claimed=False, result=row.result)
            if row.expires_at > now:
                return ClaimState(claimed=False, held_by=row.owner, until=row.expires_at)
            taken = session.execute(update(CLAIMS).where(
                LaunchClaim.key == key, LaunchClaim.owner == row.owner,
                LaunchClaim.expires_at == row.expires_at, LaunchClaim.result.is_(None))
                .values(owner=owner, expires_at=until, claimed_at=now))
            return ClaimState(claimed=rowcount(taken) == 1, held_by=row.owner, until=until)

    def record(self, key: str, *, owner: str, result: str) -> None:
        # Kept even if the lease ran out meanwhile: the job exists, and a taker that found
        # it by its tag records the same id.
        with session_scope() as session:
            session.execute(update(CLAIMS).where(LaunchClaim.key == key,
                                                 LaunchClaim.result.is_(None))
                            .values(result=result, launched_at=clock.now()))

    def release(self, key: str, *, owner: str) -> None:
        with session_scope() as session:
            session.execute(delete(CLAIMS).where(LaunchClaim.key == key,
                                                 LaunchClaim.owner == owner,
                                                 LaunchClaim.result.is_(None)))


provide(StoreLaunchClaims())
