"""Driver: Interlock embedded (SQLite, EmbeddedDispatcher threads in this one process, no
broker, no server): bench/throughput.py's flow and counting, with the embedded dispatcher.

    python bench/peers_support/interlock_embedded.py --duration 60 [--threads 4 --inflight 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import throughput  # noqa: E402

from peers_support.protocol import emit, result  # noqa: E402


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-peers-embedded-"))
    os.environ.update({"INTERLOCK_HOME": str(home),
                       "INTERLOCK_DATABASE_URL": f"sqlite:///{home / 'interlock.db'}"})
    os.environ.pop("INTERLOCK_BROKER_URL", None)
    from interlock.dispatch.embedded import EmbeddedDispatcher

    dispatcher = EmbeddedDispatcher(threads=args.threads)
    try:
        _measure(args, dispatcher)
    finally:
        dispatcher.close()


def _measure(args: argparse.Namespace, dispatcher: object) -> None:
    from sqlalchemy import func, select

    from interlock.operations import runs as ops
    from interlock.store.db import session_scope
    from interlock.store.tables import Run

    flow, _ = ops.register(throughput.FLOW, file="bench")
    slots = threading.Semaphore(args.inflight)
    stop = threading.Event()
    started: list[str] = []

    def submitter() -> None:
        while not stop.is_set():
            if slots.acquire(timeout=0.5):
                started.append(ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                                             inputs={}, dispatcher=dispatcher, actor="bench"))

    def finished() -> int:
        with session_scope() as session:
            return session.scalar(select(func.count()).select_from(Run)
                                  .where(Run.finished_at.is_not(None))) or 0

    emit("window")
    threads = [threading.Thread(target=submitter, daemon=True) for _ in range(args.submitters)]
    for t in threads:
        t.start()
    seen, deadline = 0, time.monotonic() + args.duration
    while time.monotonic() < deadline:
        done = finished()
        for _ in range(done - seen):
            slots.release()
        seen = done
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    drain = time.monotonic() + 30
    while finished() < len(started) and time.monotonic() < drain:
        time.sleep(0.1)
    with session_scope() as session:
        rows = session.execute(select(Run.state, Run.created_at, Run.finished_at)).all()
    first = min(r.created_at for r in rows)
    done_rows = [r for r in rows if r.finished_at is not None]
    result(runs_in_window=sum((r.finished_at - first).total_seconds() <= args.duration
                              for r in done_rows),
           duration=args.duration, started=len(rows),
           failed=sum(r.state != "succeeded" for r in done_rows),
           latencies=[(r.finished_at - r.created_at).total_seconds() for r in done_rows])


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=4, help="EmbeddedDispatcher threads")
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--submitters", type=int, default=2)
    return parser.parse_args()


if __name__ == "__main__":
    main()
