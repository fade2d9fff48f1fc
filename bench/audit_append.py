"""How many audited transactions PostgreSQL commits per second, one head row vs none.

Each transaction is a small realistic change: a compare-and-set on its worker's row, a
state-event row, and one or two audit records (alternately), like a run state change. N
threads run them for a few seconds against a fresh schema, once with the previous append
(embedded below: lock `audit_head` at the first record, hold it to the commit) and once
with `interlock.store.audit.record` (chain at once only when the head is free, else queue
and seal after the commit). Latency is the caller's: from the transaction's start until
`session_scope()` returns, so a record sealed after the commit is counted in full.

    python bench/audit_append.py --threads 1 8 32
    python bench/audit_append.py --threads 16 --seconds 10 --work-ms 2

The machine is shared: compare the two designs within one run, not across runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock import clock  # noqa: E402
from interlock.store import audit, audit_chain  # noqa: E402
from interlock.store.db import engine_for, session_scope  # noqa: E402
from interlock.store.facts import within_record  # noqa: E402
from interlock.store.tables import AuditRecord  # noqa: E402
from interlock.store.tables.audit import AuditPending  # noqa: E402
from interlock.testing import pg_schema  # noqa: E402

PG_URL = os.environ.get("INTERLOCK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCRATCH = ("CREATE TABLE bench_work (id INTEGER PRIMARY KEY, state INTEGER NOT NULL)",
           "CREATE TABLE bench_events (id BIGSERIAL PRIMARY KEY, work INTEGER NOT NULL, "
           "state INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())")
Record = Callable[..., Any]


def old_record(session: Session, *, actor: str, action: audit.Action, target: str,
               origin: str, before: dict[str, Any] | None = None,
               after: dict[str, Any] | None = None) -> int:
    """The append before issue 20: the head locked from the first record to the commit."""
    head = audit_chain.lock_head(session)
    before, after = within_record(before), within_record(after)
    seq, at = head.seq + 1, clock.now()
    digest = audit_chain.digest(head.hash, seq, at, actor, action.value, target, before,
                                after, origin)
    session.add(AuditRecord(seq=seq, at=at, actor=actor, action=action.value, target=target,
                            before=before, after=after, origin=origin, prev_hash=head.hash,
                            hash=digest))
    head.seq, head.hash = seq, digest
    return seq


DESIGNS: dict[str, Record] = {"old: one locked head": old_record,
                              "new: queue when held": audit.record}


@dataclass
class Result:
    transactions: int
    records: int
    seconds: float
    latencies: list[float]

    def rate(self) -> float:
        return self.records / self.seconds

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def transaction(url: str, record: Record, worker: int, n: int, work_s: float) -> int:
    """One audited change; returns how many records it appended."""
    records = 1 + n % 2
    with session_scope(url) as session:
        session.execute(text("UPDATE bench_work SET state = state + 1 WHERE id = :w"),
                        {"w": worker})
        record(session, actor="planner", action=audit.Action.RUN_STATE,
               target=f"runs/w{worker}-{n}", origin="bench", before={"state": "pending"},
               after={"state": "running"})
        session.execute(text("INSERT INTO bench_events (work, state) VALUES (:w, :n)"),
                        {"w": worker, "n": n})
        if work_s:
            time.sleep(work_s)  # the rest of the transaction: outbox rows, a snapshot read
        if records == 2:
            record(session, actor="trigger", action=audit.Action.TRIGGER_FIRED,
                   target=f"bench/w{worker}", origin="bench", after={"run": n})
    return records


def run(url: str, record: Record, threads: int, seconds: float, work_s: float) -> Result:
    with session_scope(url) as session:
        for statement in SCRATCH:
            session.execute(text(statement))
        session.execute(text("INSERT INTO bench_work (id, state) "
                             "SELECT g, 0 FROM generate_series(0, :n) g"), {"n": threads})
    stop = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]
    counts = [0] * threads

    def worker(i: int) -> None:
        n = 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            counts[i] += transaction(url, record, i, n, work_s)
            latencies[i].append(time.perf_counter() - started)
            n += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    _check(url, sum(counts))
    flat = [x for each in latencies for x in each]
    return Result(len(flat), sum(counts), elapsed, flat)


def _check(url: str, records: int) -> None:
    """Every record chained, none pending, the chain verifies."""
    with session_scope(url) as session:
        chained = session.scalar(select(func.count()).select_from(AuditRecord))
        pending = session.scalar(select(func.count()).select_from(AuditPending))
        verdict = audit.verify(session)
    assert verdict.ok and chained == records and pending == 0, (verdict, chained, pending)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--work-ms", type=float, default=1.0,
                        help="time spent in the transaction between its records")
    parser.add_argument("--pg", default=PG_URL)
    args = parser.parse_args()
    print(f"{'threads':>7}  {'design':<22} {'txn/s':>8} {'appends/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8}  vs old")
    for threads in args.threads:
        baseline: Result | None = None
        for name, record in DESIGNS.items():
            for url in pg_schema(args.pg, prefix="bench_audit"):
                engine_for(url)
                result = run(url, record, threads, args.seconds, args.work_ms / 1000)
            ratio = "" if baseline is None else \
                f"x{result.rate() / baseline.rate():.2f} appends/s, " \
                f"x{result.p(0.99) / baseline.p(0.99):.2f} p99"
            print(f"{threads:>7}  {name:<22} {result.transactions / result.seconds:>8.0f} "
                  f"{result.rate():>10.0f} {result.p(0.5):>8.1f} "
                  f"{result.p(0.99):>8.1f}  {ratio}", flush=True)
            baseline = baseline or result


if __name__ == "__main__":
    main()
