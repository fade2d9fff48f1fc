"""Assembles the running parts: the dispatcher (Celery when a broker is configured, else the
embedded loop) and the periodic jobs its reconciler runs."""

from __future__ import annotations

from interlock.audit.foreign import ForeignLogCopier
from interlock.audit.sealer import AuditSealer
from interlock.config.env import settings
from interlock.cron.checks import Monitor
from interlock.deadlines.monitor import Monitor as DeadlineMonitor
from interlock.dispatch.periodic import PeriodicJob
from interlock.events.watch import Watcher
from interlock.notify import NotificationSender
from interlock.operations import agents as _agents  # noqa: F401  (provides the agent host)
from interlock.operations.approvals import ForeignInbox
from interlock.operations.retention import RetentionJob
from interlock.store.outbox import Dispatcher


def periodic_jobs() -> list[PeriodicJob]:
    """What every reconciler runs besides its sweep: watching foreign systems named by
    `after:`, checking cron jobs for late and missed runs, copying foreign audit logs,
    purging what finished before the retention (`INTERLOCK_RETENTION_DAYS`, off at 0),
    sending webhook notifications (`INTERLOCK_NOTIFY_FILE`), flagging `sla:` deadlines LATE
    or at risk (`INTERLOCK_DEADLINES_SECONDS`), chaining audit records a dead process left
    queued."""
    return [Watcher(), Monitor(), ForeignLogCopier(), RetentionJob(), ForeignInbox(),
            NotificationSender(), DeadlineMonitor(), AuditSealer()]


def make_dispatcher() -> Dispatcher:
    if settings().broker_url:
        from interlock.dispatch.celery_app import CeleryDispatcher, app
        return CeleryDispatcher(app())
    from interlock.dispatch.embedded import EmbeddedDispatcher
    return EmbeddedDispatcher(jobs=periodic_jobs())
