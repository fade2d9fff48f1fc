"""Appends without a hot row: a transaction never waits for the audit chain's head.

When another transaction holds the head, a record is queued (`audit_pending`) in its own
transaction and chained right after the commit; these tests hold the head on purpose to
take that path, and check what the chain still proves, and what it cannot (docs/audit.md,
"Proof obligations").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from interlock.audit import query as audit_query
from interlock.config.env import settings
from interlock.store import audit, audit_chain
from interlock.store.db import dispose_all, session_scope
from interlock.store.tables import AuditHead, AuditRecord
from interlock.store.tables.audit import AuditPending

EVENT = audit.Action.EVENT_ACCEPTED


@pytest.fixture
def pg_store(pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """PostgreSQL only: on SQLite a transaction holds the one write lock, so the head is
    never held by another and nothing is ever queued."""
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", pg_schema_url)
    settings.cache_clear()
    yield pg_schema_url
    dispose_all()
    settings.cache_clear()


def _append(target: str, **after: int) -> int | None:
    with session_scope() as session:
        return audit.record(session, actor="test", action=EVENT, target=target,
                            origin="127.0.0.1", after=dict(after))


class HeldHead:
    """Another transaction holding the head (and appending one record) until released."""

    def __init__(self) -> None:
        self.locked, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        with session_scope() as session:
            audit.record(session, actor="holder", action=EVENT, target="held", origin="x")
            self.locked.set()
            self.release.wait(30)

    def __enter__(self) -> HeldHead:
        self.thread.start()
        assert self.locked.wait(30)
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.thread.join(30)


def _in_thread(target: str, results: list[int | None]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(_append(target)))
    thread.start()
    return thread


def _wait_pending(n: int) -> None:
    deadline = time.monotonic() + 30
    while _count(AuditPending) < n:
        assert time.monotonic() < deadline, "the queued record never committed"
        time.sleep(0.02)


def _count(table: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def _verdict() -> audit.Verdict:
    with session_scope() as session:
        return audit.verify(session, batch=3)


def test_a_record_queued_behind_a_held_head_is_chained_once_its_change_commits(
        pg_store: str) -> None:
    results: list[int | None] = []
    with HeldHead():
        waiting = _in_thread("queued", results)
        _wait_pending(1)  # committed with its change, not chained: the head is held
        assert waiting.is_alive() and _count(AuditRecord) == 0
    waiting.join(30)
    assert results == [None]  # no seq was known when it was recorded
    with session_scope() as session:
        rows = session.execute(select(AuditRecord.seq, AuditRecord.target)
                               .order_by(AuditRecord.seq)).all()
    assert [tuple(r) for r in rows] == [(1, "held"), (2, "queued")]
    assert _count(AuditPending) == 0 and _verdict() == audit.Verdict(ok=True, checked=2)


def test_a_free_head_chains_at_once_and_returns_the_seq(store_url: str) -> None:
    assert [_append(f"t/{i}") for i in range(3)] == [1, 2, 3]
    assert _count(AuditPending) == 0


def test_rolled_back_records_leave_neither_a_record_nor_a_gap(store_url: str) -> None:
    _append("kept/1")
    with pytest.raises(RuntimeError), session_scope() as session:
        audit.record(session, actor="test", action=EVENT, target="gone", origin="x")
        raise RuntimeError("the change fails after its record")
    with session_scope() as session, pytest.raises(RuntimeError):
        with session.begin_nested():  # a savepoint rolled back takes its record with it
            audit.record(session, actor="test", action=EVENT, target="gone", origin="x")
            raise RuntimeError("the savepoint fails")
    _append("kept/2")
    with session_scope() as session:  # the head held, then a savepoint's record rolled back
        audit.record(session, actor="test", action=EVENT, target="kept/3", origin="x")
        with pytest.raises(RuntimeError), session.begin_nested():
            audit.record(session, actor="test", action=EVENT, target="gone", origin="x")
            raise RuntimeError("the savepoint fails")
        audit.record(session, actor="test", action=EVENT, target="kept/4", origin="x")
    with session_scope() as session:
        targets = session.scalars(select(AuditRecord.target).order_by(AuditRecord.seq)).all()
    assert targets == ["kept/1", "kept/2", "kept/3", "kept/4"]
    assert _verdict() == audit.Verdict(ok=True, checked=4)


def test_concurrent_transactions_chain_every_record_once_in_their_order(
        pg_store: str) -> None:
    threads, each = 8, 12
    queued = [0]

    def work(w: int) -> None:
        for n in range(each):
            try:
                with session_scope() as session:
                    for part in range(2):
                        if audit.record(session, actor=f"w{w}", action=EVENT,
                                        target=f"w{w}/{n}/{part}", origin="x") is None:
                            queued[0] += 1
                        time.sleep(0.002)  # the rest of the change, head held or not
                    if n % 5 == 4:
                        raise RuntimeError("this change rolls back")
            except RuntimeError:
                pass

    pool = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(120)
    kept = threads * (each - each // 5) * 2
    with session_scope() as session:
        rows = session.execute(select(AuditRecord.seq, AuditRecord.target)
                               .order_by(AuditRecord.seq)).all()
    assert [r.seq for r in rows] == list(range(1, kept + 1))  # no gap, none twice
    assert not any(r.target.split("/")[1] in {"4", "9"} for r in rows)  # rolled back
    position = {r.target: r.seq for r in rows}
    assert all(position[f"w{w}/{n}/0"] < position[f"w{w}/{n}/1"] for w in range(threads)
               for n in range(each) if n % 5 != 4)
    assert queued[0] > 0, "no record was queued: the test did not take the sealer's path"
    assert _count(AuditPending) == 0 and _verdict() == audit.Verdict(ok=True, checked=kept)


def _leave_pending(*targets: str) -> None:
    """What a process that died between its commit and its sealer leaves behind."""
    with session_scope() as session:
        for target in targets:
            audit_chain.queue(session, audit_chain.Entry(
                at=audit.clock.now(), actor="test", action=EVENT.value, target=target,
                before=None, after={"t": target}, origin="x"))


def test_records_left_pending_are_chained_first_by_the_next_append(store_url: str) -> None:
    _append("first")
    _leave_pending("orphan/1", "orphan/2")
    assert _verdict() == audit.Verdict(ok=True, checked=1)  # not chained yet, not broken
    assert _append("next") in {4, None}  # None on PostgreSQL: queued behind the others
    with session_scope() as session:
        targets = session.scalars(select(AuditRecord.target).order_by(AuditRecord.seq)).all()
    assert targets == ["first", "orphan/1", "orphan/2", "next"] and _count(AuditPending) == 0


def test_verify_chains_what_is_pending_before_it_checks(store_url: str) -> None:
    _leave_pending("orphan/1", "orphan/2")
    verdict = audit_query.verify()
    assert (verdict.ok, verdict.checked) == (True, 2) and _count(AuditPending) == 0


def _queued_chain(n: int) -> None:
    """n records, each queued behind a held head and chained by a sealer."""
    for i in range(n):
        results: list[int | None] = []
        with HeldHead():
            waiting = _in_thread(f"q/{i}", results)
            _wait_pending(1)
        waiting.join(30)
        assert results == [None]


def test_records_a_sealer_chained_are_as_tamper_evident_as_any(pg_store: str) -> None:
    _queued_chain(3)  # seqs 1..6: held, q/0, held, q/1, held, q/2
    assert _verdict() == audit.Verdict(ok=True, checked=6)
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(actor="mallory"))
    assert _verdict().broken_at == 4
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 4).values(actor="test"))
        moved = session.scalars(select(AuditRecord).where(AuditRecord.seq == 6)).one()
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 6))
        session.add(AuditRecord(**{c: getattr(moved, c) for c in
                                   ("at", "actor", "action", "target", "before", "after",
                                    "origin", "prev_hash", "hash")}, seq=7))
    verdict = _verdict()  # renumbered past the head: record 6 is missing
    assert (verdict.ok, verdict.broken_at) == (False, 6)
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 7).values(seq=6))
        session.execute(update(AuditHead).values(seq=5))  # a head pulled back
    verdict = _verdict()
    assert not verdict.ok and "head says 5" in (verdict.reason or "")


def test_a_queued_record_is_not_protected_before_it_is_chained(pg_store: str) -> None:
    """The window the design leaves (docs/audit.md): whoever can write `audit_pending`
    between a commit and its sealer can change or drop the record unseen, as they could
    forge a record through `record` itself. Once chained, it is protected."""
    results: list[int | None] = []
    with HeldHead():
        waiting = _in_thread("queued", results)
        _wait_pending(1)
        with session_scope() as session:
            session.execute(update(AuditPending).values(actor="mallory"))
    waiting.join(30)
    with session_scope() as session:
        assert session.scalar(select(AuditRecord.actor).where(AuditRecord.seq == 2)) == \
            "mallory"
    assert _verdict().ok  # edited before it was chained: not detected
    dropped: list[int | None] = []
    with HeldHead():
        waiting = _in_thread("dropped", dropped)
        _wait_pending(1)
        with session_scope() as session:
            session.execute(delete(AuditPending))
    waiting.join(30)
    assert _count(AuditRecord) == 3 and _verdict().ok  # dropped before: not detected


def test_the_reconcilers_sealer_chains_what_a_dead_process_left_pending(
        store_url: str) -> None:
    from interlock.audit.sealer import AuditSealer
    from interlock.operations.runtime import periodic_jobs

    assert any(isinstance(job, AuditSealer) for job in periodic_jobs())
    _leave_pending("orphan/1", "orphan/2")
    AuditSealer().maybe_tick(dispatcher=None)  # type: ignore[arg-type]  (it sends nothing)
    assert _count(AuditPending) == 0
    with session_scope() as session:
        targets = session.scalars(select(AuditRecord.target).order_by(AuditRecord.seq)).all()
    assert targets == ["orphan/1", "orphan/2"]
