"""Throughput of 3-node `noop` flows on Redis + PostgreSQL with real workers.

Starts N `interlock worker` processes, then starts runs as fast as the system takes them
(keeping at most --inflight unfinished) for --duration seconds, and prints flow runs/s and
p50/p99 start->finish latency (run created -> run finished, from the store's clock).

    python bench/throughput.py                      # 60 s, 2 workers, PostgreSQL, Redis
    python bench/throughput.py --duration 20 --workers 1
    python bench/throughput.py --cost 50            # what one run costs the store, alone
    python bench/throughput.py --long-way           # each node through a worker (EXECUTE)

`--cost N` runs N flows one after another (after a warm-up) and prints what each cost
PostgreSQL: write transactions (transaction ids assigned: `txid_current()` moves only for
transactions that write), all transactions committed and rows written (`pg_stat_database`),
per run. Counted for the whole cluster: run it on a quiet machine. It also prints the
statements by kind, counted in the workers by SQLAlchemy's engine events
(`bench/counting/`), and those of the start (`start_run`, in this process) apart.

    python bench/throughput.py --cost 40 --baseline-src /tmp/hotpath-base/src

runs the same measurement first with another checkout's `src/` (a baseline) first on the
PYTHONPATH of this process and of its workers, then with this one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, func, make_url, select, text

ROOT = Path(__file__).resolve().parents[1]
COUNTING = Path(__file__).resolve().parent / "counting"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(COUNTING))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import long_way  # noqa: E402
from peers_support.cpu import is_backend, stat_of  # noqa: E402

FLOW = """
id: bench-noop
namespace: bench
nodes:
  a: {uses: noop, with: {v: 1}}
  b: {uses: noop, needs: [a], with: {v: "{{ nodes.a.outputs.v + 1 }}"}}
  c: {uses: noop, needs: [b], with: {v: "{{ nodes.b.outputs.v + 1 }}"}}
"""


def main() -> None:
    args = _args()
    if args.baseline_src:
        _baseline(args.baseline_src)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    home = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    env = {"INTERLOCK_DATABASE_URL": f"{args.pg}?options=-csearch_path%3D{schema}",
           "INTERLOCK_BROKER_URL": args.redis, "INTERLOCK_HOME": str(home),
           "INTERLOCK_QUEUE": f"bench-{schema}"}
    if args.cost:  # the workers count their statements (`bench/counting/sitecustomize.py`)
        counts = home / "counts"
        counts.mkdir()
        env["INTERLOCK_BENCH_COUNTS"] = str(counts)
    if args.long_way:  # noop nodes go through the workers (`bench/counting/long_way.py`)
        env[long_way.ENV] = "1"
        long_way.install()
    if args.cost or args.long_way:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COUNTING),
                                                          os.environ.get("PYTHONPATH")]))
    os.environ.update(env)
    from tests.workers import WorkerPool, flush_redis_db  # after the env is set
    flush_redis_db(args.redis)
    pool = WorkerPool(env={**os.environ, **env}, logs=home)
    try:
        for _ in range(args.workers):
            pool.start(concurrency=args.concurrency)
        for worker in pool.workers:
            worker.wait_ready()
        _cost(args, admin, home / "counts") if args.cost else _measure(
            args, [w.pid for w in pool.workers])
    finally:
        pool.stop_all()
        flush_redis_db(args.redis)
        from interlock.store.db import dispose_all
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _measure(args: argparse.Namespace, workers: list[int]) -> None:
    from interlock.dispatch.celery_app import CeleryDispatcher, app
    from interlock.operations import runs as ops
    from interlock.store.db import session_scope
    from interlock.store.tables import Run

    dispatcher = CeleryDispatcher(app())
    flow, _ = ops.register(FLOW, file="bench")
    slots = threading.Semaphore(args.inflight)
    started: list[str] = []
    stop = threading.Event()

    def submitter() -> None:
        while not stop.is_set():
            slots.acquire()
            started.append(ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                                         dispatcher=dispatcher, actor="bench"))

    def releaser() -> None:
        seen = 0
        while not stop.is_set() or seen < len(started):
            with session_scope() as session:
                done = session.scalar(select(func.count()).select_from(Run)
                                      .where(Run.finished_at.is_not(None))) or 0
            for _ in range(done - seen):
                slots.release()
            seen = done
            if stop.is_set() and time.monotonic() > drain_deadline:
                break
            time.sleep(0.05)

    drain_deadline = float("inf")
    threads = [threading.Thread(target=submitter, daemon=True) for _ in range(args.submitters)]
    watcher = threading.Thread(target=releaser, daemon=True)
    cpu = _CpuSplit(workers, make_url(args.pg).database or "")
    t0 = time.monotonic()
    for t in [*threads, watcher]:
        t.start()
    time.sleep(args.duration)
    spent = cpu.spent()
    stop.set()
    drain_deadline = time.monotonic() + 30
    watcher.join(timeout=35)
    elapsed = time.monotonic() - t0

    with session_scope() as session:
        rows = session.execute(select(Run.state, Run.created_at, Run.finished_at)).all()
    finished = [r for r in rows if r.finished_at is not None]
    in_window = [r for r in finished if (r.finished_at - rows_start(rows)).total_seconds()
                 <= args.duration]
    latencies = sorted((r.finished_at - r.created_at).total_seconds() for r in finished)
    states: dict[str, int] = {}
    for r in rows:
        states[r.state] = states.get(r.state, 0) + 1
    print(f"workers={args.workers} concurrency={args.concurrency} inflight<={args.inflight} "
          f"duration={args.duration}s (wall {elapsed:.1f}s incl. drain)")
    print(f"runs started={len(rows)} finished={len(finished)} states={states}")
    print(f"throughput: {len(in_window) / args.duration:.1f} flow runs/s "
          f"({len(in_window)} finished within the {args.duration}s window)")
    if latencies:
        print(f"latency start->finish: p50={_pct(latencies, 50) * 1000:.0f} ms "
              f"p99={_pct(latencies, 99) * 1000:.0f} ms max={latencies[-1] * 1000:.0f} ms "
              f"mean={statistics.mean(latencies) * 1000:.0f} ms")
    if in_window:
        per = {part: seconds * 1000 / len(in_window) for part, seconds in spent.items()}
        print(f"CPU per run: {sum(per.values()):.1f} ms (workers {per['workers']:.1f}, the "
              f"starts in this process {per['start']:.1f}, PostgreSQL {per['postgresql']:.1f})")


class _CpuSplit:
    """CPU seconds over the window of the workers (with their reaped children), of this
    process (the submitters: what the API does in a deployment, and the bench's own
    polling), and of the PostgreSQL backends of the bench's database (all of its backends:
    run it alone). Read from /proc at both ends only: a sampling loop would cost this
    process CPU of its own."""

    def __init__(self, workers: list[int], database: str):
        self.workers, self.prefix = workers, f" {database} "
        self.start, self.self_start = self._read(), time.process_time()

    def _read(self) -> dict[int, tuple[str, float]]:
        """{pid: (part, CPU seconds)} of the workers and the database's backends."""
        seen = {pid: ("workers", _cpu(pid)) for pid in self.workers}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and is_backend(int(entry), self.prefix):
                seen[int(entry)] = ("postgresql", _cpu(int(entry)))
        return seen

    def spent(self) -> dict[str, float]:
        """By part; a backend that ended inside the window is left out (pooled: rare)."""
        spent = {"workers": 0.0, "postgresql": 0.0,
                 "start": time.process_time() - self.self_start}
        for pid, (part, cpu) in self._read().items():
            spent[part] += cpu - self.start.get(pid, (part, 0.0))[1]
        return spent


def _cpu(pid: int) -> float:
    stat = stat_of(pid)
    return 0.0 if stat is None else stat[0]


COUNTERS = text("SELECT txid_current(), xact_commit, tup_inserted, tup_updated, tup_deleted "
               "FROM pg_stat_database WHERE datname = current_database()")


def _cost(args: argparse.Namespace, admin: object, counts: Path) -> None:
    import stmtcount

    import interlock
    from interlock.dispatch.celery_app import CeleryDispatcher, app
    from interlock.operations import runs as ops
    from tests.helpers import wait_run

    stmtcount.install()  # this process: the start of each run
    dispatcher = CeleryDispatcher(app())
    flow, _ = ops.register(FLOW, file="bench")
    start_cost: Counter[str] = Counter()

    def one() -> None:
        before = stmtcount.totals()
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                               dispatcher=dispatcher, actor="bench")
        start_cost.update(stmtcount.totals() - before)
        assert wait_run(run_id).state.value == "succeeded"

    def counters() -> tuple[int, ...]:
        time.sleep(1.5)  # backends flush their statistics at most once a second
        with admin.connect() as conn:  # type: ignore[attr-defined]
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            return tuple(int(v) for v in conn.execute(COUNTERS).one())

    for _ in range(5):
        one()  # warm-up: caches, connections, the flow's revision
    start_cost.clear()
    idle_from = stmtcount.read_all(counts)
    time.sleep(IDLE_WINDOW_S)  # what the workers send with no run at all
    idle = stmtcount.read_all(counts) - idle_from
    before, workers_before, t0 = counters(), stmtcount.read_all(counts), time.monotonic()
    for _ in range(args.cost):
        one()
    after, workers, elapsed = counters(), stmtcount.read_all(counts), time.monotonic() - t0
    workers.subtract(workers_before)
    # Each counters() call takes one transaction id itself, and the submitter's start_run,
    # the polling of wait_run and the two snapshots are counted too: they are this
    # process's, not the workers', and are shown apart.
    xids, commits, ins, upd, dele = (a - b for a, b in zip(after, before, strict=True))
    per = args.cost
    print(f"cost of one 3-node noop run, {per} runs one after another "
          f"(workers={args.workers}; interlock from {Path(interlock.__file__).parent}):")
    print(f"  write transactions (xids) {(xids - 1) / per:.1f} per run (incl. the start)")
    print(f"  transactions committed {commits / per:.1f} per run (incl. reads and polling)")
    print(f"  rows inserted {ins / per:.1f}, updated {upd / per:.1f}, deleted {dele / per:.1f} "
          "per run")
    print(f"  workers, per run: {_statements(workers, 'run', per)}")
    print(f"  the start (start_run), per run: {_statements(start_cost, 'run', per)}")
    print(f"  workers' background (reconciler, periodic jobs) over {elapsed:.1f} s, apart: "
          f"{_statements(workers, 'bg', 1)}; idle, per second: "
          f"{_statements(idle, 'bg', IDLE_WINDOW_S)}")


IDLE_WINDOW_S = 3.0
KINDS = ("SELECT", "LOCK", "INSERT", "UPDATE", "DELETE", "OTHER")


def _statements(counts: Counter[str], where: str, per: float) -> str:
    """'W write tx (S statements: n SELECT, ...), R read tx (S statements)' per ``per``."""
    parts = []
    for tx in ("write", "read", "rolledback"):
        n = counts[f"{where}.{tx}.tx"]
        if not n and tx == "rolledback":
            continue
        kinds = {k: counts[f"{where}.{tx}.{k}"] for k in KINDS}
        total = sum(kinds.values())
        detail = ", ".join(f"{v / per:.1f} {k}" for k, v in kinds.items() if v)
        parts.append(f"{n / per:.1f} {tx} tx ({total / per:.1f} statements"
                     + (f": {detail})" if detail else ")"))
    return "; ".join(parts)


def _baseline(src: str) -> None:
    """This bench, once, with another checkout's `src/` first on the PYTHONPATH."""
    argv: list[str] = []
    skip = False
    for arg in sys.argv[1:]:
        if skip or arg.startswith("--baseline-src"):
            skip = arg == "--baseline-src"  # its value follows as the next argument
            continue
        argv.append(arg)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [src, os.environ.get("PYTHONPATH")]))}
    print(f"--- baseline: {src}", flush=True)
    subprocess.run([sys.executable, __file__, *argv], env=env, check=True)
    print(f"--- this checkout: {ROOT / 'src'}", flush=True)


def rows_start(rows: list) -> object:  # type: ignore[type-arg]
    return min(r.created_at for r in rows)


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    parser.add_argument("--inflight", type=int, default=200)
    parser.add_argument("--submitters", type=int, default=8,
                        help="threads starting runs (what the API does in a deployment)")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--cost", type=int, default=0,
                        help="instead: N runs one at a time, and what each cost the store")
    parser.add_argument("--long-way", action="store_true",
                        help="noop nodes go through the workers (an EXECUTE message each), "
                             "as a script's or a foreign job's would, instead of settling "
                             "in the start's transaction")
    parser.add_argument("--baseline-src", default=None,
                        help="first run the same with this `src/` (another checkout's) first "
                             "on the PYTHONPATH")
    return parser.parse_args()


if __name__ == "__main__":
    main()
