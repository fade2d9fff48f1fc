"""The audit chain: appends link by hash; an edit, a deletion or a reorder is found."""

from __future__ import annotations

from sqlalchemy import delete, text, update

from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord


def _append(n: int) -> None:
    for i in range(n):
        with session_scope() as session:
            audit.record(session, actor=f"user{i}", action=audit.Action.EVENT_ACCEPTED,
                         target=f"t/{i}", after={"i": i}, origin="127.0.0.1")


def _verdict() -> audit.Verdict:
    with session_scope() as session:
        return audit.verify(session, batch=3)


def test_an_untouched_chain_verifies(store_url: str) -> None:
    _append(7)
    assert _verdict() == audit.Verdict(ok=True, checked=7)


def test_an_edit_is_found_at_its_record(store_url: str) -> None:
    _append(6)
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(actor="mallory"))
    verdict = _verdict()
    assert (verdict.ok, verdict.broken_at) == (False, 4)


def test_a_deletion_is_found_where_the_gap_is(store_url: str) -> None:
    _append(6)
    with session_scope() as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    verdict = _verdict()
    assert (verdict.ok, verdict.broken_at) == (False, 3)
    assert verdict.reason is not None and "missing" in verdict.reason


def test_deleting_the_newest_records_is_found(store_url: str) -> None:
    _append(5)
    with session_scope() as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq >= 4))
    verdict = _verdict()
    assert (verdict.ok, verdict.broken_at) == (False, 4)


def test_a_reorder_is_found_at_the_first_moved_record(store_url: str) -> None:
    _append(6)
    with session_scope() as session:  # swap the contents of records 2 and 5
        rows = {r.seq: r for r in session.query(AuditRecord).filter(
            AuditRecord.seq.in_([2, 5]))}
        fields = ("at", "actor", "action", "target", "before", "after", "origin",
                  "prev_hash", "hash")
        two = {f: getattr(rows[2], f) for f in fields}
        five = {f: getattr(rows[5], f) for f in fields}
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(**five))
        session.execute(update(AuditRecord).where(AuditRecord.seq == 5).values(**two))
    verdict = _verdict()
    assert (verdict.ok, verdict.broken_at) == (False, 2)


def test_appends_from_many_transactions_stay_one_chain(store_url: str) -> None:
    import threading
    threads = [threading.Thread(target=_append, args=(5,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _verdict() == audit.Verdict(ok=True, checked=20)
    with session_scope() as session:
        assert session.execute(text("SELECT count(*) FROM audit_log")).scalar() == 20
