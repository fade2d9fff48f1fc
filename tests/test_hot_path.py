"""What a run costs the store on the hot path (issue 20), and nodes settled in submit.

The cost is counted in this process with SQLAlchemy's engine events while a dispatcher
that runs every piece of work at once, in this thread, carries a run from its start to
its end: the bounds below fail when someone adds a transaction or a statement to it.

A node whose adapter settles in submit (`noop`, `dispatch.inline`) is settled in the
planning transaction; it must leave what the long way (an EXECUTE round trip) leaves:
the same state events, attempt, outputs and audit records.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from interlock_noop import NoopAdapter
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from interlock.dispatch.handlers import handle
from interlock.operations import runs as ops
from interlock.states import RunState
from interlock.store.db import session_scope
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import Attempt, AuditRecord, TaskKind
from tests.helpers import write_flow

CHAIN = """
id: chain
namespace: tests.hot
nodes:
  a: {uses: noop, with: {v: 1}}
  b: {uses: noop, needs: [a], with: {v: "{{ nodes.a.outputs.v + 1 }}"}}
  c: {uses: noop, needs: [b], with: {v: "{{ nodes.b.outputs.v + 1 }}"}}
"""
# A 3-node noop run: one transaction, the start's, which also plans and settles all of it
# (`dispatch.controller.plan_started`; before, a worker's second transaction did).
WRITE_TRANSACTIONS = 1
# On PostgreSQL each queues its audit records; a sealing round of its process chains them
# after its commit. Alone, one round per transaction; under load a round chains the records
# of every transaction that committed meanwhile (`store/audit_seal.py`).
SEALING_ROUNDS = 1
# Its statements (2026-12-01: 66 before nodes settled in submit, then 8 for the start and
# 34 for the rest, 23 with a pass's state events in one INSERT; now 6 for the start and 9
# for the rest, with a pass's row changes and settled attempts coalesced, the audit records
# queued at commit in one INSERT, and no attempts read for a new run; then 9 with the first
# pass in the start's transaction: no outbox row written and deleted, no run and nodes read
# back, one INSERT of state events; sealing rounds apart):
# raise this only with the reason written next to it.
STATEMENTS = 9
SEAL = "DELETE FROM audit_pending"  # the statement that makes a transaction a sealing round
WRITES = frozenset({"INSERT", "UPDATE", "DELETE"})


class AtOnce:
    """A dispatcher that runs each piece of work right away, in this thread, and keeps a
    list of what it was sent."""

    def __init__(self) -> None:
        self.sent: list[Work] = []
        self.queue: list[Work] = []

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        self.sent.append(work)
        self.queue.append(work)

    def send_polls(self, batch: PollBatch) -> None:
        raise AssertionError(f"nothing is polled on this path: {batch}")

    def drain(self) -> None:
        while self.queue:
            handle(self.queue.pop(0), dispatcher=self)


class Cost:
    """Transactions and statements this thread sends, by kind; the audit chain's sealing
    rounds apart (`seal` transactions, `seal_statements`)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.statements: Counter[str] = Counter()
        self.seal_statements: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()
        self._pending: list[tuple[str, str]] = []  # (kind, statement) of the open transaction

    def statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == self.thread:
            self._pending.append((statement.lstrip().split(None, 1)[0].upper(), statement))

    def commit(self, conn: Any) -> None:
        if threading.get_ident() != self.thread or not self._pending:
            return
        sealing = any(SEAL in statement for _, statement in self._pending)
        writes = any(kind in WRITES or "FOR UPDATE" in statement
                     for kind, statement in self._pending)
        self.transactions["seal" if sealing else "write" if writes else "read"] += 1
        counts = self.seal_statements if sealing else self.statements
        counts.update(kind for kind, _ in self._pending)
        self._pending.clear()

    def rollback(self, conn: Any) -> None:
        if threading.get_ident() == self.thread and self._pending:
            self.transactions["rolled back"] += 1
            self._pending.clear()


@contextmanager
def counted() -> Iterator[Cost]:
    cost = Cost()
    event.listen(Engine, "before_cursor_execute", cost.statement)
    event.listen(Engine, "commit", cost.commit)
    event.listen(Engine, "rollback", cost.rollback)
    try:
        yield cost
    finally:
        event.remove(Engine, "before_cursor_execute", cost.statement)
        event.remove(Engine, "commit", cost.commit)
        event.remove(Engine, "rollback", cost.rollback)


def _start(flow_text: str, tmp_path: Path, dispatcher: AtOnce) -> str:
    """Start a run of ``flow_text`` and carry it to its end."""
    flow, _ = ops.register(write_flow(tmp_path, flow_text).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=dispatcher, actor="test")
    dispatcher.drain()
    return run_id


def _run(flow_text: str, tmp_path: Path, dispatcher: AtOnce) -> str:
    run_id = _start(flow_text, tmp_path, dispatcher)
    assert ops.get_run(run_id).state is RunState.SUCCEEDED
    return run_id


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_3_node_noop_run_costs_two_write_transactions(store_url: str, tmp_path: Path) -> None:
    _run(CHAIN, tmp_path, AtOnce())  # warm-up: the flow's revision and the caches
    flow, _ = ops.register(write_flow(tmp_path, CHAIN).read_text())
    dispatcher = AtOnce()
    with counted() as cost:
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                               dispatcher=dispatcher, actor="test")
        dispatcher.drain()
    assert ops.get_run(run_id).state is RunState.SUCCEEDED
    assert cost.transactions["write"] == WRITE_TRANSACTIONS, cost.transactions
    assert cost.transactions["seal"] <= SEALING_ROUNDS, cost.transactions
    assert set(cost.transactions) <= {"write", "seal"}, cost.transactions
    assert sum(cost.statements.values()) <= STATEMENTS, cost.statements
    print(f"a 3-node noop run: {dict(cost.transactions)} transactions, statements "
          f"{dict(cost.statements)}, sealing {dict(cost.seal_statements)}")
    assert dispatcher.sent == []  # no broker hop at all: the run ended in its start


def _record_of(run_id: str) -> dict[str, Any]:
    """What a run left, without ids and times: events, attempts, nodes, audit actions."""
    events = [(e.entity, e.node_id, e.attempt, e.from_state, e.to_state, e.actor, e.reason)
              for e in ops.run_events(run_id)]
    detail = ops.get_run(run_id)
    with session_scope() as session:
        attempts = [(a.node_id, a.number, a.state, a.outputs, a.remote_status, a.error,
                     a.submit_tries, a.handle["kind"], a.finished_at is not None)
                    for a in session.scalars(select(Attempt).where(Attempt.run_id == run_id)
                                             .order_by(Attempt.node_id))]
        audit = [(r.action, r.after) for r in session.scalars(
            select(AuditRecord).where(AuditRecord.target == f"runs/{run_id}")
            .order_by(AuditRecord.seq))]
    nodes = [(n.id, n.state, n.outputs, n.reason) for n in detail.nodes]
    return {"events": events, "attempts": attempts, "nodes": nodes, "audit": audit}


def test_a_node_settled_in_submit_leaves_what_the_long_way_leaves(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    quick = AtOnce()
    settled = _record_of(_run(CHAIN, tmp_path, quick))
    monkeypatch.setattr(NoopAdapter, "settles_in_submit", False)
    slow = AtOnce()
    long_way = _record_of(_run(CHAIN, tmp_path, slow))
    assert settled == long_way
    assert quick.sent == []
    assert [w.kind for w in slow.sent].count(TaskKind.EXECUTE) == 3
    states = [(e[0], e[1], e[3], e[4]) for e in settled["events"] if e[1] == "b"]
    assert states == [("node", "b", "pending", "queued"), ("attempt", "b", "queued", "succeeded"),
                      ("node", "b", "queued", "succeeded")]


SECRET = """
id: secret
namespace: tests.hot
nodes:
  a: {uses: noop, with: {token: "{{ secret('HOT_PATH_TOKEN') }}"}}
"""


def test_a_node_that_names_a_secret_goes_the_long_way(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are resolved by the worker that submits and masked in what comes back."""
    monkeypatch.setenv("HOT_PATH_TOKEN", "s3cr3t-value")
    dispatcher = AtOnce()
    run_id = _run(SECRET, tmp_path, dispatcher)
    assert TaskKind.EXECUTE in [w.kind for w in dispatcher.sent]
    outputs = {n.id: n.outputs for n in ops.get_run(run_id).nodes}
    assert "s3cr3t-value" not in repr(outputs)
