"""Retention, as the CLI and the reconciler use it: purge what finished before a cutoff
(`interlock.store.retention`), archive the audit trail by segment (`interlock.audit.archive`),
and the periodic job that purges on its own when `INTERLOCK_RETENTION_DAYS` is set.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from interlock import clock
from interlock.audit.archive import ArchiveResult, archive
from interlock.config.env import settings
from interlock.dispatch.periodic import Every
from interlock.store import retention
from interlock.store.outbox import Dispatcher
from interlock.store.retention import PurgeReport

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600.0  # how often the periodic job looks for a new backlog
BATCHES_PER_TICK = 4        # transactions per reconciler pass while a backlog remains
DAY = timedelta(days=1)


def purge(*, older_than: timedelta, dry_run: bool = False) -> PurgeReport:
    """Remove (or, dry, count) what finished more than ``older_than`` ago."""
    if older_than <= timedelta(0):
        raise ValueError("--older-than must be longer than 0 (e.g. 90d)")
    return retention.purge(cutoff=clock.now() - older_than, dry_run=dry_run,
                           attempts_dir=settings().attempts_dir)


def archive_audit(*, before: datetime, output: Path, actor: str) -> ArchiveResult:
    return archive(before=before, output=output, actor=actor)


class RetentionJob:
    """Purges what finished more than INTERLOCK_RETENTION_DAYS ago (off when 0): once an
    hour, and while a backlog remains a few batches on every reconciler pass, so a large
    first purge never holds the sweeps up for long."""

    name = "retention"

    def __init__(self, batches_per_tick: int = BATCHES_PER_TICK) -> None:
        self.batches_per_tick = batches_per_tick
        self._every = Every()
        self._backlog = False

    def maybe_tick(self, dispatcher: Dispatcher) -> int:
        days = settings().retention_days
        if days <= 0 or not (self._backlog or self._every.due(RETENTION_EVERY_S)):
            return 0
        return self.tick(days)

    def tick(self, days: float) -> int:
        """One bounded purge; returns the rows removed."""
        report = retention.purge(cutoff=clock.now() - days * DAY,
                                 attempts_dir=settings().attempts_dir,
                                 max_batches=self.batches_per_tick)
        self._backlog = report.more
        removed = sum(n for key, n in report.counts.items() if key != retention.ATTEMPT_DIRS)
        if removed:
            log.info("retention: removed %s%s", dict(report.counts),
                     " (more to come)" if report.more else "")
        return removed
