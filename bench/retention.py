"""What retention costs on PostgreSQL: purging 100,000 finished runs and archiving their
audit records while flows keep running beside it.

Bulk-loads (COPY) N finished runs 120 days old, each with 2 node runs, 2 attempts, 8 state
events and 2 audit records (a valid chain), plus N/5 foreign external runs, N/5 raw lineage
events and 1,000 attempt folders. Then, with an embedded dispatcher running `script` +
`noop` flows one after another the whole time (each checked to succeed), it times:

- `interlock purge --older-than 90d --dry-run` and the purge itself (rows per table, rows/s);
- `interlock audit archive --before <90 days ago>` (the file, then delete + signed anchor);
- `interlock audit verify` afterwards (must pass), then an edit in the kept part (must be
  found at that record).

    python bench/retention.py                  # 100,000 runs
    python bench/retention.py --runs 20000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

from sqlalchemy import func, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock.audit import query as audit_query  # noqa: E402
from interlock.config.env import settings  # noqa: E402
from interlock.dispatch.embedded import EmbeddedDispatcher  # noqa: E402
from interlock.operations import retention  # noqa: E402
from interlock.operations import runs as ops  # noqa: E402
from interlock.states import RUN_TERMINAL, RunState  # noqa: E402
from interlock.store import audit  # noqa: E402
from interlock.store.db import engine_for, session_scope  # noqa: E402
from interlock.store.tables import AuditHead, AuditRecord, FlowRevision, Run  # noqa: E402
from interlock.testing import pg_schema  # noqa: E402

AGE = timedelta(days=120)
KEEP = timedelta(days=90)
DIRS = 1000
CHUNK = 20_000
FLOW = dedent("""
    id: beside
    namespace: bench.retention
    nodes:
      extract: {uses: script, with: {command: "echo ok"}}
      load: {uses: noop, needs: [extract]}
      publish: {uses: noop, needs: [load]}
""").lstrip()


def _copy(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """COPY, CHUNK rows per transaction (each well within the statement timeout)."""
    raw = engine_for().raw_connection()
    try:
        for first in range(0, len(rows), CHUNK):
            with raw.cursor() as cursor, cursor.copy(  # type: ignore[attr-defined]
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows[first:first + CHUNK]:
                    copy.write_row(row)
            raw.commit()
    finally:
        raw.close()


def load_audit(n: int, start: datetime) -> None:
    """A valid chain of ``n`` old records from the genesis, and the head at its end."""
    prev, rows = audit.GENESIS, []
    for seq in range(1, n + 1):
        at = start + timedelta(milliseconds=seq)
        action = audit.Action.RUN_CREATED.value if seq % 2 else audit.Action.RUN_STATE.value
        actor, target, origin = "planner", f"runs/{seq // 2:032x}", "bench:1"
        before, after = {"state": "running"}, {"state": "succeeded"}
        digest = audit._digest(prev, seq, at, actor, action, target, before, after, origin)
        rows.append((seq, at, actor, action, target, json.dumps(before), json.dumps(after),
                     origin, prev, digest))
        prev = digest
    _copy("audit_log", ["seq", "at", "actor", "action", "target", "before", "after", "origin",
                        "prev_hash", "hash"], rows)
    with session_scope() as session:
        session.execute(update(AuditHead).where(AuditHead.id == audit.HEAD_ID)
                        .values(seq=n, hash=prev))


def load_runs(n: int, revision_id: int, start: datetime) -> None:
    runs, nodes, attempts, events = [], [], [], []
    attempts_dir = settings().attempts_dir
    for i in range(n):
        run_id, at = uuid.uuid4().hex, start + timedelta(milliseconds=i)
        done = at + timedelta(seconds=5)
        runs.append((run_id, revision_id, "bench.retention", "old", 1, "succeeded", "{}",
                     '{"type": "manual"}', uuid.uuid4().hex, at, done, done))
        events.append((run_id, "run", None, None, None, "pending", "planner", at))
        events.append((run_id, "run", None, None, "pending", "succeeded", "planner", done))
        for node, uses in (("extract", "script"), ("load", "noop")):
            nodes.append((run_id, node, uses, "succeeded", 0, "{}", done))
            key = f"{run_id}:{node}:1"
            folder = attempts_dir / key.replace(":", "_")
            if len(attempts) < DIRS:
                folder.mkdir(parents=True)
                (folder / "stdout.log").write_text("ok\n")
            handle = {"kind": uses, "external_id": key, "data": {"dir": str(folder)}}
            attempts.append((run_id, node, 1, key, uses, "succeeded", "{}", json.dumps(handle),
                             "{}", 0, at, at, done))
            for a, b in (("pending", "queued"), ("queued", "succeeded")):
                events.append((run_id, "node", node, None, a, b, "planner", done))
            events.append((run_id, "attempt", node, 1, "queued", "succeeded", "planner", done))
    _copy("runs", ["id", "flow_revision_id", "namespace", "flow_id", "revision", "state",
                   "inputs", "trigger", "trace_id", "created_at", "updated_at", "finished_at"],
          runs)
    _copy("node_runs", ["run_id", "node_id", "uses", "state", "retry_base", "outputs",
                        "updated_at"], nodes)
    _copy("attempts", ["run_id", "node_id", "number", "key", "uses", "state", "params", "handle",
                       "outputs", "submit_tries", "created_at", "submitted_at", "finished_at"],
          attempts)
    _copy("state_events", ["run_id", "entity", "node_id", "attempt", "from_state", "to_state",
                           "actor", "at"], events)
    foreign = [("other/prod", "nightly", f"f{i}", "succeeded", "success", "{}", start)
               for i in range(n // 5)]
    _copy("external_runs", ["system", "job_id", "external_id", "state", "remote_status",
                            "details", "updated_at"], foreign)
    lineage = [(uuid.uuid4().hex, "run", "COMPLETE", start, "openlineage", "{}", start)
               for _ in range(n // 5)]
    _copy("lineage_events", ["key", "kind", "event_type", "event_time", "source", "payload",
                             "received_at"], lineage)


class Beside(threading.Thread):
    """Runs the flow again and again until stopped; every run must succeed."""

    def __init__(self, dispatcher: EmbeddedDispatcher):
        super().__init__(daemon=True)
        self.dispatcher, self.stopped = dispatcher, threading.Event()
        self.took: list[float] = []
        self.failed: list[str] = []

    def run(self) -> None:
        while not self.stopped.is_set():
            began = time.perf_counter()
            run_id = ops.start_run(namespace="bench.retention", flow_id="beside", inputs={},
                                   dispatcher=self.dispatcher, actor="bench")
            while (state := ops.get_run(run_id).state) not in RUN_TERMINAL:
                time.sleep(0.02)
            self.took.append(time.perf_counter() - began)
            if state is not RunState.SUCCEEDED:
                self.failed.append(f"{run_id}: {state.value}")


def timed(what: str, dispatcher: EmbeddedDispatcher, fn: Any) -> Any:
    beside = Beside(dispatcher)
    beside.start()
    time.sleep(0.5)  # the flow is running when the work starts
    began = time.perf_counter()
    try:
        result = fn()
        took = time.perf_counter() - began
    finally:
        beside.stopped.set()
        beside.join(60)
    assert not beside.failed and beside.took, beside.failed
    median = sorted(beside.took)[len(beside.took) // 2]
    print(f"{what}: {took:.2f}s; beside it {len(beside.took)} flow run(s) succeeded, "
          f"slowest {max(beside.took):.2f}s, median {median:.2f}s")
    return result, took


def measure(url: str, n: int, home: Path) -> None:
    os.environ.update(INTERLOCK_DATABASE_URL=url, INTERLOCK_HOME=str(home),
                      INTERLOCK_AUDIT_KEY="bench-" + "k" * 32)
    if os.geteuid() == 0:  # a root worker runs scripts as root only when told to (as tests do)
        os.environ.setdefault("INTERLOCK_RUN_AS", "root")
    settings.cache_clear()
    engine_for()
    start = datetime.now(UTC) - AGE
    began = time.perf_counter()
    load_audit(2 * n, start)
    ops.register(FLOW, actor="bench")
    ops.register(FLOW.replace("id: beside", "id: old"), actor="bench")
    with session_scope() as session:
        revision_id = session.scalar(select(FlowRevision.id)
                                     .where(FlowRevision.flow_id == "old"))
    assert revision_id is not None
    load_runs(n, revision_id, start)
    print(f"loaded {n:,} finished runs and {2 * n:,} audit records in "
          f"{time.perf_counter() - began:.1f}s")
    dispatcher = EmbeddedDispatcher()
    try:
        timed("baseline (nothing else)", dispatcher, lambda: time.sleep(20))
        dry, _ = timed("purge --dry-run", dispatcher,
                       lambda: retention.purge(older_than=KEEP, dry_run=True))
        report, took = timed("purge", dispatcher, lambda: retention.purge(older_than=KEEP))
        assert report.table() == dry.table(), (report.table(), dry.table())
        rows = sum(v for k, v in report.table().items() if k != "attempt_dirs")
        for table, count in report.table().items():
            print(f"  {table:15} {count:>10,}")
        print(f"  {rows:,} rows in {took:.2f}s = {rows / took:,.0f} rows/s, "
              f"{report.table()['runs'] / took:,.0f} runs/s")
        assert report.table()["runs"] == n and report.table()["attempt_dirs"] == DIRS
        kept = _count(Run)
        assert kept and all(s in RUN_TERMINAL for s in _states()), "a recent run was touched"
        output = home / "audit-archive.jsonl"
        result, took = timed("audit archive", dispatcher, lambda: retention.archive_audit(
            before=datetime.now(UTC) - KEEP, output=output, actor="bench"))
        print(f"  {result.records:,} records, {output.stat().st_size / 1e6:.1f} MB, "
              f"{result.records / took:,.0f} records/s")
        began = time.perf_counter()
        verdict = audit_query.verify()
        print(f"audit verify after the archive: ok={verdict.ok} checked={verdict.checked} "
              f"archived={verdict.archived} in {time.perf_counter() - began:.2f}s")
        assert verdict.ok and verdict.archived == 2 * n, verdict
        edit = verdict.archived + verdict.checked // 2 + 1
        with session_scope() as session:
            session.execute(update(AuditRecord).where(AuditRecord.seq == edit)
                            .values(actor="mallory"))
        broken = audit_query.verify()
        assert (broken.ok, broken.broken_at) == (False, edit), broken
        print(f"an edit of kept record {edit} is found: broken_at={broken.broken_at}")
    finally:
        dispatcher.close()


def _count(model: Any) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _states() -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Run.state)))


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="interlock-bench-retention-"))
    for url in pg_schema(args.pg, "bench_retention"):
        measure(url, args.runs, home)


if __name__ == "__main__":
    main()
