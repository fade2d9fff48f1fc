"""The reconciler's net under the audit chain: records a process queued (another transaction
held the chain's head) and could not chain because it died are chained every
`INTERLOCK_WATCH_SECONDS`, not only by the next append, verify or archive
(`store.audit_seal`, `docs/audit.md`)."""

from __future__ import annotations

from interlock.config.env import settings
from interlock.dispatch.periodic import Every
from interlock.store.audit_seal import seal_all
from interlock.store.outbox import Dispatcher


class AuditSealer:
    name = "audit-sealer"

    def __init__(self) -> None:
        self._every = Every()

    def maybe_tick(self, dispatcher: Dispatcher) -> None:
        if self._every.due(settings().watch_s):
            seal_all()  # one indexed exists() when nothing is pending
