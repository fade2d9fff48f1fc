"""How each system's news reaches Interlock in a window: pushed by the system, or polled.

- **Pushed**: a signed event the system sent (`POST /api/v1/events/{kind}`: the Airflow
  listener plugin, the cron wrapper, Dagster's sensor). Each accepted one is an audit
  record `event.accepted` whose actor is the system (`interlock.events.intake`): counted
  from the chained trail and from records still waiting to be chained.
- **Polled**: Interlock asked. An attempt that did not finish within its submit is followed
  by polling (`poll_interval` is set when it is submitted); a run Interlock did not start,
  seen in the window while the system pushed nothing, was found by the watcher listing the
  system's finished runs (`interlock.events.watch`).

A system that pushes is still polled for the outcome of our attempts (a push is a hint,
DESIGN 3): `push` means "push first, poll as fallback", `poll` that nothing was pushed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from interlock.dashboards.models import Contact, ContactMode
from interlock.dashboards.window import Window
from interlock.store.audit import Action
from interlock.store.tables import AuditRecord, ExternalRun
from interlock.store.tables.audit import AuditPending


@dataclass
class Pushed:
    events: int = 0
    last: datetime | None = None

    def add(self, count: int, at: datetime | None) -> None:
        self.events += count
        if at is not None and (self.last is None or at > self.last):
            self.last = at


def pushed(session: Session, window: Window, names: Collection[str]) -> dict[str, Pushed]:
    """Accepted pushed events of the window per system (of ``names``)."""
    found: dict[str, Pushed] = {}
    for table in (AuditRecord, AuditPending):
        query = (select(table.actor, func.count(), func.max(table.at))
                 .where(table.action == Action.EVENT_ACCEPTED.value, table.actor.in_(names),
                        *window.where(table.at))
                 .group_by(table.actor))
        for name, count, at in session.execute(query):
            found.setdefault(name, Pushed()).add(count, at)
    return found


def foreign_seen(session: Session, window: Window, names: Collection[str]) -> dict[str, int]:
    """Runs Interlock did not start, recorded or updated in the window, per system
    (`ix_external_runs_seen`)."""
    query = (select(ExternalRun.system, func.count())
             .where(ExternalRun.system.in_(names), ExternalRun.attempt_id.is_(None),
                    *window.where(ExternalRun.updated_at))
             .group_by(ExternalRun.system))
    return {name: count for name, count in session.execute(query)}


def contact(push: Pushed | None, *, polled_attempts: int, foreign_runs: int) -> Contact:
    push = push or Pushed()
    mode = (ContactMode.PUSH if push.events else
            ContactMode.POLL if polled_attempts or foreign_runs else ContactMode.NONE)
    return Contact(mode=mode, pushed_events=push.events, last_push=push.last,
                   polled_attempts=polled_attempts, foreign_runs=foreign_runs)
