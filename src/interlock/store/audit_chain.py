"""The audit chain's links: the digest, the head, and how records join the chain.

Every record joins the chain under the head row's lock (`audit_head`), wherever it comes
from: appended at once by `audit.record` when the head is free, or moved from
`audit_pending` by a sealer. The lock is the one a previous release's appends take, so
both can run side by side during a rolling upgrade. Under it, `seq` is the head's plus
one and `prev_hash` the head's hash; the head moves in the same transaction, so a rolled
back transaction leaves no gap and two sealers never chain the same position.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, insert, select, update
from sqlalchemy.orm import Session

from interlock.store.tables.audit import AuditHead, AuditPending, AuditRecord

GENESIS = "0" * 64
HEAD_ID = 1
SEAL_BATCH = 1000  # pending records read per statement while sealing
SQLITE = "sqlite"  # its transactions hold the only write lock: the head is never contended
# Core statements built once (each append runs them; building one costs more than sending it).
_RECORDS = cast(Table, AuditRecord.__table__)
_INSERT_RECORDS = insert(_RECORDS)
_MOVE_HEAD = update(cast(Table, AuditHead.__table__)).where(
    AuditHead.id == HEAD_ID).values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))


def digest(prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str,
           before: Any, after: Any, origin: str) -> str:
    """sha256(prev_hash + canonical JSON of the record): what `verify` recomputes."""
    body = json.dumps([seq, at.isoformat(), actor, action, target, before, after, origin],
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}{body}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """What a record says, before it has a place in the chain."""

    at: datetime
    actor: str
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    origin: str


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


_ENTRY_COLUMNS = (AuditPending.at, AuditPending.actor, AuditPending.action,
                  AuditPending.target, AuditPending.before, AuditPending.after,
                  AuditPending.origin)
_PENDING = cast(Table, AuditPending.__table__)
_QUEUED = exists().where(AuditPending.id.is_not(None))  # anything in `audit_pending`
_INSERT_PENDING = insert(_PENDING)
_TAKE_PENDING = delete(_PENDING).where(_PENDING.c.id.in_(
    select(_PENDING.c.id).order_by(_PENDING.c.id).limit(SEAL_BATCH).scalar_subquery())
).returning(_PENDING.c.id, *(_PENDING.c[c.key] for c in _ENTRY_COLUMNS))


def lock_head(session: Session) -> AuditHead:
    """The chain's head, locked until the transaction ends (waits for another holder)."""
    head = session.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
    assert head is not None, "audit_head is missing: run the store migrations"
    return head


def take_head(session: Session, *, wait: bool, unless_queued: bool = False,
              if_queued: bool = False) -> Head | None:
    """Lock the head for this transaction; None when another transaction holds it and
    ``wait`` is False (`SKIP LOCKED`: never waits, never fails the transaction). On SQLite
    the transaction already holds the only write lock, so the head is always free.

    ``unless_queued``: also None, without locking, when records wait in `audit_pending`
    (this transaction's own, or committed ones): appends are contended, so the caller
    queues too rather than hold the head for the rest of its transaction while sealers
    wait behind it. One statement: the check and the lock cost one round trip.

    ``if_queued``: None, without locking or waiting, when nothing waits in `audit_pending`
    (a sealing round with nothing to chain)."""
    query = select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == HEAD_ID)
    if unless_queued:
        query = query.where(~_QUEUED)
    if if_queued:
        query = query.where(_QUEUED)
    row = session.execute(query.with_for_update(skip_locked=not wait, of=AuditHead)).first()
    if row is None and wait and not if_queued:
        raise AssertionError("audit_head is missing: run the store migrations")
    return None if row is None else Head(row.seq, row.hash)


def chain(session: Session, head: Head, entries: Sequence[Entry]) -> Head:
    """Append ``entries`` after ``head`` (locked by this transaction); the new head."""
    rows = []
    for e in entries:
        seq = head.seq + 1
        link = digest(head.hash, seq, e.at, e.actor, e.action, e.target, e.before, e.after,
                      e.origin)
        rows.append({"seq": seq, "at": e.at, "actor": e.actor, "action": e.action,
                     "target": e.target, "before": e.before, "after": e.after,
                     "origin": e.origin, "prev_hash": head.hash, "hash": link})
        head = Head(seq, link)
    if rows:
        session.execute(_INSERT_RECORDS, rows)
    return head


def seal_pending(session: Session, head: Head) -> Head:
    """Chain every pending record this transaction sees, lowest id first, and delete them
    from `audit_pending`; the new head. Under the head's lock only."""
    while True:
        # Taken and deleted in one statement (RETURNING gives no order: sorted here).
        rows = sorted(session.execute(_TAKE_PENDING).all(), key=lambda row: row[0])
        if rows:
            head = chain(session, head, [Entry(*row[1:]) for row in rows])
        if len(rows) < SEAL_BATCH:
            return head


def move_head(session: Session, head: Head) -> None:
    session.execute(_MOVE_HEAD, {"head_seq": head.seq, "head_hash": head.hash})


def queue(session: Session, entry: Entry) -> int:
    """Write ``entry`` to `audit_pending` in ``session``'s transaction; its id."""
    result = session.execute(insert(AuditPending).values(**asdict(entry)))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def queue_all(session: Session, entries: Sequence[Entry]) -> None:
    """Write ``entries`` to `audit_pending` in ``session``'s transaction, one statement."""
    session.execute(_INSERT_PENDING, [asdict(e) for e in entries])
