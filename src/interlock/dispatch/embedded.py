"""The embedded dispatcher: the same handlers, run by threads in this process.

Used when no broker is configured, so `interlock run` and `interlock serve` need no
services. Work is as durable as with Celery (the outbox is in the store); what runs
in flight when the process stops is picked up by the next process's reconciler.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from interlock.dispatch.handlers import handle, handle_poll_batch
from interlock.dispatch.periodic import PeriodicJob
from interlock.dispatch.reconciler import ReconcilerThread
from interlock.store.outbox import PollBatch, Work

log = logging.getLogger(__name__)


class EmbeddedDispatcher:
    def __init__(self, threads: int = 4, sweep_every: float = 0.1,
                 jobs: Sequence[PeriodicJob] = ()):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="interlock-work")
        self._timers: list[tuple[float, int, Work]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._timer_thread = threading.Thread(target=self._run_timers, name="interlock-timers",
                                              daemon=True)
        self._timer_thread.start()
        self._reconciler = ReconcilerThread(self, every=sweep_every, jobs=jobs)
        self._reconciler.start()

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        if countdown > 0:
            with self._cond:
                heapq.heappush(self._timers, (time.monotonic() + countdown, next(self._seq), work))
                self._cond.notify()
            return
        self._submit(self._run, work)

    def send_polls(self, batch: PollBatch) -> None:
        self._submit(self._run_polls, batch)

    def _submit(self, fn: object, arg: object) -> None:
        if not self._closed:
            self._pool.submit(fn, arg)  # type: ignore[arg-type]

    def _run(self, work: Work) -> None:
        try:
            handle(work, dispatcher=self)
        except Exception:
            log.exception("%s of run %s failed; the reconciler will retry it", work.kind,
                          work.run_id)

    def _run_polls(self, batch: PollBatch) -> None:
        try:
            handle_poll_batch(batch.attempt_ids, dispatcher=self)
        except Exception:
            log.exception("polling %s attempts failed; the next sweep retries", batch.kind)

    def _run_timers(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (
                        not self._timers or self._timers[0][0] > time.monotonic()):
                    timeout = self._timers[0][0] - time.monotonic() if self._timers else None
                    self._cond.wait(timeout)
                if self._closed:
                    return
                _, _, work = heapq.heappop(self._timers)
            self._submit(self._run, work)

    def close(self) -> None:
        self._reconciler.stop()
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._reconciler.join(timeout=5)
