"""Chaining the records a transaction queued because another held the audit chain's head.

`audit.record` never waits for the head: when another transaction holds it (or records
are queued already, so appends are contended), the record goes to `audit_pending` in the
caller's transaction (so it commits or rolls back with the change it describes) and the
session is marked. Then, by session events on every `Session`:

- at commit (`before_commit`), the head is tried once more without waiting; if it is free
  the queued records are chained in the same transaction, holding the head only for the
  commit itself;
- otherwise, once the transaction has committed and its connection is back in the pool
  (`after_transaction_end`), the thread waits for a sealing round that started after its
  commit: one thread of the process leads it, a short transaction that waits for the head
  and chains every pending record it finds, so the records of many transactions are
  chained under one lock and one commit. The caller's `session_scope()` returns only
  after that, so whoever reads the trail after a change finds its record chained.

A sealer that fails (the store went away, the process died) loses nothing: the records
stay pending, committed, and the next append anywhere, `interlock audit verify` or an
archive chains them first (`seal_all`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from sqlalchemy import Engine, event, exists, select
from sqlalchemy.orm import Session, SessionTransaction

from interlock.store import audit_chain
from interlock.store.db import session_scope
from interlock.store.tables.audit import AuditPending

log = logging.getLogger(__name__)
QUEUED = "interlock.audit.queued"        # session.info: how many records it left pending
SEAL_DUE = "interlock.audit.seal_due"    # session.info: committed with records still pending
HELD = "interlock.audit.head"            # session.info: the head this transaction holds
DEFERRED = "interlock.audit.deferred"    # session.info: entries chained when it commits


def mark(session: Session, count: int = 1) -> None:
    """Remember that ``session``'s transaction left ``count`` records pending."""
    session.info[QUEUED] = session.info.get(QUEUED, 0) + count


def hold(session: Session, head: audit_chain.Head) -> None:
    """Remember the head this transaction locked and moved: its next record needs no
    second look (forgotten when the transaction or a savepoint ends)."""
    session.info[HELD] = head


def held_head(session: Session) -> audit_chain.Head | None:
    return session.info.get(HELD)  # type: ignore[no-any-return]


def defer(session: Session, entry: audit_chain.Entry) -> None:
    """Chain ``entry`` when ``session``'s transaction commits (`audit.record_at_commit`)."""
    session.info.setdefault(DEFERRED, []).append(entry)


def _commit_deferred(session: Session, entries: list[audit_chain.Entry]) -> None:
    """At commit: the transaction's deferred records, in one statement. On PostgreSQL they
    are queued, and this process's next sealing round chains them with every other
    transaction's (a head taken by each transaction, even for its commit only, is taken
    by one at a time: under load most find it busy, and a round that chains many records
    costs less than transactions taking turns). On SQLite the transaction already holds
    the only write lock, so they are chained here, and the head is never contended."""
    head = held_head(session)
    if head is None and session.get_bind().dialect.name == audit_chain.SQLITE:
        head = audit_chain.take_head(session, wait=False)
    if head is None:
        audit_chain.queue_all(session, entries)
        mark(session, len(entries))
        return
    head = audit_chain.chain(session, head, entries)
    audit_chain.move_head(session, head)
    hold(session, head)


def seal_here(session: Session, *, wait: bool, if_queued: bool = False) -> int | None:
    """Chain every pending record in ``session``'s transaction; how many (0: another
    sealer took them first). None when the head is held by another transaction and
    ``wait`` is False, or (``if_queued``) nothing was pending: nothing was done."""
    head = audit_chain.take_head(session, wait=wait, if_queued=if_queued)
    if head is None:
        return None
    sealed = audit_chain.seal_pending(session, head)
    if sealed != head:
        audit_chain.move_head(session, sealed)
    return sealed.seq - head.seq


def seal_all(url: str | None = None) -> None:
    """Chain whatever is pending, in a transaction of its own (verify, archive)."""
    with session_scope(url) as session:
        if session.scalar(select(exists().where(AuditPending.id.is_not(None)))):
            seal_here(session, wait=True)


class _Rounds:
    """Group sealing for one engine in this process: the threads that committed queued
    records wait for a sealing round that *started* after their commit; one of them leads
    it (one transaction chains every pending record), the others sleep on a condition
    instead of queueing on the head's row lock. Other processes have rounds of their own
    and meet on the row lock."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.started = self.finished = 0
        self.leading = False

    def seal_after(self, bind: Engine) -> None:
        with self.changed:
            needed = self.started + 1  # a round under way may have read the queue already
            while self.finished < needed:
                if not self.leading:
                    self.leading, self.started = True, self.started + 1
                    break
                self.changed.wait()
            else:
                return
        try:
            _seal_round(bind)
        finally:
            with self.changed:
                self.leading, self.finished = False, self.started
                self.changed.notify_all()


_rounds: weakref.WeakKeyDictionary[Engine, _Rounds] = weakref.WeakKeyDictionary()
_rounds_lock = threading.Lock()


def _rounds_for(bind: Engine) -> _Rounds:
    with _rounds_lock:
        return _rounds.setdefault(bind, _Rounds())


def _seal_round(bind: Engine) -> None:
    """Wait for the head and chain what is pending (the records of every thread that waits
    for this round, and whatever else committed before it). Nothing left to chain (another
    process's sealer took it), nothing committed: the round rolls back its lock and costs
    no fsync."""
    session = Session(bind)
    try:
        if seal_here(session, wait=True, if_queued=True):  # the check and the lock: one statement
            session.commit()
    finally:
        session.close()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    deferred = session.info.pop(DEFERRED, None)
    if deferred:
        _commit_deferred(session, deferred)
    elif session.info.get(QUEUED) and seal_here(session, wait=False) is not None:
        session.info.pop(QUEUED)  # records `audit.record` queued: chained now if it can


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.get(QUEUED) and not session.in_nested_transaction():
        session.info[SEAL_DUE] = session.info.pop(QUEUED)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    session.info.pop(HELD, None)  # a savepoint rolled back may have taken records with it
    if transaction.parent is not None or transaction.nested:
        return
    session.info.pop(QUEUED, None)  # rolled back: the pending rows went with it
    session.info.pop(DEFERRED, None)  # rolled back: its records with it
    queued: int = session.info.pop(SEAL_DUE, 0)
    if not queued:
        return
    bind: Any = session.get_bind()
    try:
        _rounds_for(bind).seal_after(bind)
    except Exception:  # the change is committed; its records wait for the next sealer
        log.exception("could not chain %d committed audit record(s) now; they stay in "
                      "audit_pending until the next append, verify or archive", queued)
