"""The reconciler's periodic jobs run isolated: one that raises never skips the others.

Before the jobs were injected (`ReconcilerThread(jobs=...)`, `PeriodicJobs`), the reconciler
ran `sweep(); watcher.maybe_tick(); cron_monitor.maybe_tick(); foreign_logs.maybe_tick()`
inside one `try` (commit 7a18e60, `src/interlock/dispatch/reconciler.py`): a watcher that raised on every tick (a foreign system answering garbage) meant the
cron monitor never flagged a missed run and no foreign audit log was copied, with one log
line per sweep as the only sign. These tests hold that a raising job is logged and counted
in `PeriodicJobs.failures`, and that the jobs after it still run every time.
"""

from __future__ import annotations

import logging
import threading

import pytest

from interlock.dispatch.periodic import PeriodicJobs
from interlock.dispatch.reconciler import ReconcilerThread
from interlock.store.outbox import Dispatcher
from tests.test_executor import Recorder


class Broken:
    """A job that raises every time it is due (it is always due)."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def maybe_tick(self, dispatcher: Dispatcher) -> object:
        self.calls += 1
        raise RuntimeError(f"watcher blew up (call {self.calls})")


class Counting:
    """A job that counts its runs, and sets `enough` after `wanted` of them."""

    def __init__(self, name: str, wanted: int = 0) -> None:
        self.name, self.wanted = name, wanted
        self.ran = 0
        self.enough = threading.Event()

    def maybe_tick(self, dispatcher: Dispatcher) -> object:
        self.ran += 1
        if self.ran >= self.wanted:
            self.enough.set()
        return self.ran


def test_a_raising_job_is_counted_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    before, broken, after = Counting("cron-monitor"), Broken(), Counting("foreign-logs")
    jobs = PeriodicJobs([before, broken, after])
    with caplog.at_level(logging.ERROR, logger="interlock.dispatch.periodic"):
        for _ in range(5):
            jobs.run_due(Recorder())
    assert (before.ran, broken.calls, after.ran) == (5, 5, 5)
    assert jobs.failures == {"broken": 5}
    failed = [r for r in caplog.records if "periodic job broken failed" in r.getMessage()]
    assert len(failed) == 5
    assert failed[-1].exc_info is not None and "call 5" in str(failed[-1].exc_info[1])


def test_the_reconciler_thread_keeps_running_jobs_after_one_raises(sqlite_store: str) -> None:
    """Through a real ReconcilerThread, sweeping a real (empty) store between the jobs."""
    broken, after = Broken(), Counting("after-broken", wanted=5)
    thread = ReconcilerThread(Recorder(), every=0.01, jobs=[broken, after])
    thread.start()
    try:
        assert after.enough.wait(30), f"the job after a broken one ran {after.ran} times"
    finally:
        thread.stop()
        thread.join(10)
    assert not thread.is_alive()
    assert after.ran >= 5
    assert thread.periodic.failures["broken"] == broken.calls >= 5
    assert broken.calls == after.ran  # every pass ran both jobs, the failing one first

