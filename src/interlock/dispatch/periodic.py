"""Work the reconciler does every so many seconds, not on every sweep: the periodic jobs.

A job is anything with a `name` and a `maybe_tick(dispatcher)` that decides for itself
(usually with an `Every`) whether it is due. The reconciler runs each one isolated: a job
that raises is logged and counted, and the others still run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from interlock.store.outbox import Dispatcher

log = logging.getLogger(__name__)


class Every:
    """Says whether periodic work is due, on the monotonic clock; due at once at first."""

    def __init__(self) -> None:
        self._next = 0.0

    def due(self, seconds: float) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + seconds
        return True


class PeriodicJob(Protocol):
    name: str

    def maybe_tick(self, dispatcher: Dispatcher) -> object:
        """Do the job's work if it is due; return anything (a count, for logs)."""


class PeriodicJobs:
    """The reconciler's periodic jobs, and how often each one has failed."""

    def __init__(self, jobs: Sequence[PeriodicJob] = ()):
        self.jobs = list(jobs)
        self.failures: Counter[str] = Counter()

    def run_due(self, dispatcher: Dispatcher) -> None:
        for job in self.jobs:
            try:
                job.maybe_tick(dispatcher)
            except Exception:
                self.failures[job.name] += 1
                log.exception("periodic job %s failed (%d so far); the others still run",
                              job.name, self.failures[job.name])
