"""Approvals: the time from the last vote to the gated node's submit, embedded and Celery.

On PostgreSQL (a throw-away schema per mode), a flow with one gated `noop` node needing two
people (`compliance` + `risk`) is started --gates times by `user:starter`; once every run
waits for its request, the gates are approved one at a time (sequentially, so the figure is
latency, not throughput) by two approvers holding API tokens with those groups, through
`interlock.operations.approvals.vote` and the mode's dispatcher. The reference is the wall
time (UTC, same host as the store's clock) when the deciding vote call returned, after its
commit; from the store: the node's state event to `queued` (released by the gate) and the
attempt's `finished_at` (`noop` finishes inside submit). Prints p50/p99/max of both.

    python bench/approvals.py                          # --gates 50 --mode both
    python bench/approvals.py --gates 50 --mode celery --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NS = "bench.approvals"
FLOW = f"""
id: gated
namespace: {NS}
nodes:
  release:
    uses: noop
    with: {{v: 1}}
    approval:
      subject: Release the payment
      rules: [{{group: compliance}}, {{group: risk}}]
"""
WAIT_S = 60.0
POLL_S = 0.01


def main() -> None:
    args = _args()
    print(f"machine: {os.cpu_count()} cores; PostgreSQL store; gates={args.gates}, "
          f"votes one gate at a time (2 per gate, the 2nd decides)")
    modes = ["embedded", "celery"] if args.mode == "both" else [args.mode]
    for mode in modes:
        with _store(args.pg) as url:
            home = Path(tempfile.mkdtemp(prefix=f"interlock-approvals-{mode}-"))
            env = {"INTERLOCK_DATABASE_URL": url, "INTERLOCK_HOME": str(home)}
            if mode == "celery":
                env.update({"INTERLOCK_BROKER_URL": args.redis,
                            "INTERLOCK_QUEUE": f"bench-approvals-{uuid.uuid4().hex[:8]}"})
            else:
                os.environ.pop("INTERLOCK_BROKER_URL", None)
            os.environ.update(env)
            from interlock.config.env import settings
            settings.cache_clear()
            if mode == "celery":
                _celery(args, home)
            else:
                _embedded(args)


@contextlib.contextmanager
def _store(pg: str) -> Iterator[str]:
    from interlock.testing import pg_schema
    schemas = pg_schema(pg, prefix="bench_approvals")
    try:
        yield next(schemas)
    finally:
        schemas.close()  # drops the schema, disposes the store's engines


def _embedded(args: argparse.Namespace) -> None:
    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations.runtime import periodic_jobs

    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        _report("embedded (EmbeddedDispatcher, 4 threads, in this process)",
                _measure(args.gates, dispatcher))
    finally:
        dispatcher.close()


def _celery(args: argparse.Namespace, home: Path) -> None:
    from tests.workers import WorkerPool, flush_redis_db  # after the env is set

    flush_redis_db(args.redis)
    pool = WorkerPool(env=dict(os.environ), logs=home)
    try:
        for _ in range(args.workers):
            pool.start(concurrency=args.concurrency)
        for worker in pool.workers:
            worker.wait_ready()
        from interlock.dispatch.celery_app import CeleryDispatcher, app
        _report(f"celery ({args.workers} `interlock worker` processes x {args.concurrency} "
                f"threads, Redis {args.redis})", _measure(args.gates, CeleryDispatcher(app())))
    finally:
        pool.stop_all()  # SIGTERM to each worker's own process group
        flush_redis_db(args.redis)


def _measure(gates: int, dispatcher: Any) -> list[dict[str, float]]:
    from interlock import clock
    from interlock.operations import approvals as approval_ops
    from interlock.operations import runs as ops

    flow, _ = ops.register(FLOW, file="bench", actor="user:author")
    compliance, risk = _person("cara", "compliance"), _person("rick", "risk")
    runs = [ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                          dispatcher=dispatcher, actor="user:starter") for _ in range(gates)]
    requests = [_pending_request(run_id) for run_id in runs]

    samples = []
    for run_id, request_id in zip(runs, requests, strict=True):
        first = approval_ops.vote(request_id, principal=compliance, option="approve",
                                  inputs={}, comment="ok", dispatcher=dispatcher)
        assert first["state"] == "pending", first
        called = time.perf_counter()
        last = approval_ops.vote(request_id, principal=risk, option="approve", inputs={},
                                 comment="ok", dispatcher=dispatcher)
        voted = clock.now()
        call_s = time.perf_counter() - called
        assert last["state"] == "approved", last
        queued, finished, decided = _released(run_id, request_id)
        samples.append({"queued": (queued - voted).total_seconds(),
                        "submitted": (finished - voted).total_seconds(),
                        "decided_to_submitted": (finished - decided).total_seconds(),
                        "vote_call": call_s})
    return samples


def _person(name: str, group: str) -> Any:
    from interlock.access import tokens
    from interlock.access.permissions import Role
    from interlock.store.db import session_scope

    with session_scope() as session:
        token, _ = tokens.create(session, name=name, role=Role.APPROVER, namespace=NS,
                                 created_by="bench", groups=(group,))
        principal, _ = tokens.authenticate(session, token)
    return principal


def _pending_request(run_id: str) -> str:
    from interlock.operations import approvals as approval_ops
    from interlock.states import ApprovalState
    from interlock.store.approvals import RequestFilter

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = approval_ops.list_requests(filters=RequestFilter(
            run_id=run_id, states=(ApprovalState.PENDING,)))
        if found:
            return str(found[0]["id"])
        time.sleep(0.05)
    raise RuntimeError(f"no pending approval request for run {run_id} after {WAIT_S}s")


def _released(run_id: str, request_id: str) -> tuple[datetime, datetime, datetime]:
    """(node -> queued, attempt finished, request decided), waiting for the attempt."""
    from interlock.store.db import session_scope
    from interlock.store.tables import ApprovalRequest, Attempt, StateEvent

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with session_scope() as session:
            finished = session.scalar(select(Attempt.finished_at).where(
                Attempt.run_id == run_id, Attempt.node_id == "release", Attempt.number == 1))
            if finished is not None:
                queued = session.scalar(select(StateEvent.at).where(
                    StateEvent.run_id == run_id, StateEvent.entity == "node",
                    StateEvent.node_id == "release", StateEvent.to_state == "queued")
                    .order_by(StateEvent.id).limit(1))
                decided = session.scalar(select(ApprovalRequest.decided_at).where(
                    ApprovalRequest.id == request_id))
                assert queued is not None and decided is not None, (run_id, request_id)
                return queued, finished, decided
        time.sleep(POLL_S)
    raise RuntimeError(f"run {run_id}: the gated node was not submitted {WAIT_S}s after "
                       "the deciding vote")


def _report(mode: str, samples: list[dict[str, float]]) -> None:
    print(f"\nmode: {mode}; gates approved: {len(samples)}")
    for key, label in (("queued", "last vote returned -> node released (queued)"),
                       ("submitted", "last vote returned -> submitted (attempt done)"),
                       ("decided_to_submitted", "decided_at (in the vote's transaction) -> "
                                                "submitted"),
                       ("vote_call", "the deciding vote call itself")):
        values = sorted(s[key] for s in samples)
        print(f"  {label:56s} p50 {1000 * statistics.median(values):7.1f} ms  "
              f"p99 {1000 * _pct(values, 99):7.1f} ms  max {1000 * values[-1]:7.1f} ms  "
              f"min {1000 * values[0]:7.1f} ms")


def _pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gates", type=int, default=50)
    parser.add_argument("--mode", choices=["embedded", "celery", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2, help="celery: worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="celery: threads per worker")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    return parser.parse_args()


if __name__ == "__main__":
    main()
