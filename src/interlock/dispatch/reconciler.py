"""The reconciler: one sweep finds work that nobody is doing and hands it out again.

- outbox rows whose lease ran out (their worker died, or the send was lost);
- in-flight attempts due for a poll, batched: one poll task per adapter kind;
- runs whose planner asked to be woken (retry backoff, timeouts).
Every sweep is safe to run from many processes at once: each item is claimed by a
compare-and-set before it is handed out.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from sqlalchemy import select, update

from interlock import clock
from interlock.dispatch.periodic import PeriodicJob, PeriodicJobs
from interlock.states import RUN_ACTIVE, NodeState
from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher, PollBatch
from interlock.store.tables import RUNS, Attempt, Run, TaskKind, rowcount

log = logging.getLogger(__name__)
SWEEP_EVERY = 0.25  # seconds between sweeps
BATCH = 500


def sweep(dispatcher: Dispatcher) -> int:
    """One pass; returns how many items were handed out."""
    with session_scope() as session:
        overdue = outbox.claim_overdue(session, limit=BATCH)
    for work in overdue:
        dispatcher.send(work)
    batches = _due_polls()
    for batch in batches:
        dispatcher.send_polls(batch)
    woken = _due_wakeups()
    for run_id in woken:
        dispatcher.send(outbox.Work(TaskKind.ADVANCE, run_id))
    return len(overdue) + len(batches) + len(woken)


def _due_polls() -> list[PollBatch]:
    now = clock.now()
    with session_scope() as session:
        rows = session.execute(select(Attempt.id, Attempt.uses).where(
            Attempt.state == NodeState.RUNNING.value, Attempt.next_poll_at <= now)
            .order_by(Attempt.next_poll_at).limit(BATCH)).all()
    by_kind: dict[str, list[int]] = {}
    for attempt_id, kind in rows:
        by_kind.setdefault(kind, []).append(attempt_id)
    return [PollBatch(kind, ids) for kind, ids in by_kind.items()]


def _due_wakeups() -> list[str]:
    now = clock.now()
    woken: list[str] = []
    with session_scope() as session:
        due = session.execute(select(Run.id, Run.wake_at).where(
            Run.wake_at <= now,
            Run.state.in_([s.value for s in RUN_ACTIVE])).limit(BATCH)).all()
        for run_id, wake_at in due:
            # Pushed back by a lease, not cleared: if the ADVANCE is lost, it fires again.
            claimed = session.execute(
                update(RUNS).where(Run.id == run_id, Run.wake_at == wake_at)
                .values(wake_at=now + outbox.lease()))
            if rowcount(claimed) == 1:
                woken.append(run_id)
    return woken


class ReconcilerThread(threading.Thread):
    """Sweeps until stopped, then runs the periodic jobs that are due; a failed sweep is
    logged and the next one tries again, and a failed job never holds up the others."""

    def __init__(self, dispatcher: Dispatcher, every: float = SWEEP_EVERY,
                 jobs: Sequence[PeriodicJob] = ()):
        super().__init__(name="interlock-reconciler", daemon=True)
        self.dispatcher, self.every = dispatcher, every
        self.stopped = threading.Event()
        self.periodic = PeriodicJobs(jobs)

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                sweep(self.dispatcher)
            except Exception:
                log.exception("reconciler sweep failed; retrying")
            self.periodic.run_due(self.dispatcher)

    def stop(self) -> None:
        self.stopped.set()
