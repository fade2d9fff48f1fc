"""Foreign systems' own audit logs, copied into Interlock's audit trail.

Someone clearing a task in the Airflow UI never goes through Interlock; Airflow's event
log records it. Every `INTERLOCK_WATCH_SECONDS` the reconciler asks each registered system
for the log entries after the last one copied, and appends them as `foreign.action`
records (actor `<system>:<user>`, origin the system). The last copied entry is found in
the trail itself (its target ends in the entry's zero-padded id), and new entries are
appended under the chain's lock after reading it again, so concurrent workers never copy
an entry twice.

Facts, not payloads (`store.facts`): an entry's short fields (event, ids, numbers) are
kept; its `extra` (Airflow's detail: a trigger's `conf`, a variable's value), any `conf`
or error text, and anything long or nested are kept as sha256 + size.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.adapters.contract import ForeignAction
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.config.env import settings
from interlock.config.systems import load_systems
from interlock.dispatch.periodic import Every
from interlock.errors import AdapterError, InterlockError
from interlock.store import audit, facts
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord

log = logging.getLogger(__name__)
BATCH = 500  # entries copied per system and look: a long backlog is caught up over looks
ID_DIGITS = 15


def target_of(system: str, entry_id: int) -> str:
    # Zero-padded so that the greatest target under the prefix is the last entry copied.
    return f"{system}/log/{entry_id:0{ID_DIGITS}d}"


def last_copied(session: Session, system: str) -> tuple[int | None, datetime | None]:
    row = session.scalars(select(AuditRecord).where(
        AuditRecord.action == audit.Action.FOREIGN_ACTION.value,
        AuditRecord.target.startswith(f"{system}/log/", autoescape=True))
        .order_by(AuditRecord.target.desc()).limit(1)).first()
    if row is None or not row.after:
        return None, None
    return int(row.after["id"]), datetime.fromisoformat(row.after["at"])


def copy_log(system: str, registry: AdapterRegistry | None = None) -> int:
    """Copy the entries of ``system``'s log not copied yet; returns how many."""
    adapter = (registry or default_registry()).get(load_systems().get(system).kind)
    with session_scope() as session:
        after_id, after_time = last_copied(session, system)
    entries = adapter.foreign_actions(system, after_id=after_id, after_time=after_time,
                                      limit=BATCH)
    if not entries:
        return 0
    with session_scope() as session:
        audit.lock_head(session)  # then read again: another worker may have copied them
        after_id, _ = last_copied(session, system)
        fresh = [e for e in entries if after_id is None or e.id > after_id]
        for entry in fresh:
            _append(session, system, entry)
    return len(fresh)


def _append(session: Session, system: str, entry: ForeignAction) -> None:
    audit.record(session, actor=f"{system}:{entry.actor}"[:200],
                 action=audit.Action.FOREIGN_ACTION, target=target_of(system, entry.id),
                 origin=system, after={**facts.fields({"event": entry.action,
                                                       "on": entry.target, **entry.details}),
                                       "id": entry.id, "at": entry.at.isoformat()})


class ForeignLogCopier:
    """Runs `copy_log` for every registered system from the reconciler."""

    name = "foreign-audit-logs"

    def __init__(self, registry: AdapterRegistry | None = None):
        self.registry = registry or default_registry()
        self._every = Every()

    def maybe_tick(self, dispatcher: object = None) -> int:
        if not self._every.due(settings().watch_s):
            return 0
        copied = 0
        systems = load_systems()
        for system in systems.names():
            if systems.get(system).kind not in self.registry.kinds:
                continue  # a model endpoint or an MCP server: no adapter, no log to copy
            try:
                copied += copy_log(system, self.registry)
            except (AdapterError, UnknownAdapter, InterlockError) as exc:
                log.warning("copying the audit log of %s failed, next look retries: %s",
                            system, exc)
        return copied
