"""`interlock scheduler`: fires `schedule:` triggers, each tick exactly once.

For every schedule trigger of every flow's newest revision there is a cursor row
(`schedule_cursors`): the last tick handled. A scheduler locks the cursor, fires the ticks
due since then (as the trigger's catch-up policy says) and moves the cursor, all in one
transaction. So two schedulers never fire a tick twice, a restarted one loses nothing,
and each firing is also a unique `trigger_firings` row (belt and braces).

A trigger seen for the first time starts from now: registering a flow never backfills.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.engine import ticks as cron_ticks
from interlock.spec.models import CatchUp, Flow, Schedule
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.flows import get_revision, list_flows, load_flow_of
from interlock.store.outbox import Dispatcher
from interlock.store.tables import FlowRevision, ScheduleCursor
from interlock.triggers.firing import Fired, fire, send_fired
from interlock.triggers.types import TriggerType

log = logging.getLogger(__name__)
ORIGIN = "scheduler"
# With `catchup: none`, a tick this late still counts as on time (a slow loop, a GC pause):
# only ticks missed by longer than this are skipped.
ON_TIME = timedelta(seconds=60)
MAX_TICKS = 10_000  # ticks looked at per trigger and pass; older ones are skipped and audited


@dataclass(frozen=True)
class Handled:
    fired: list[Fired]
    skipped: int


def trigger_key(flow: Flow, schedule: Schedule) -> str:
    return f"{flow.ref}#schedule:{schedule.cron}@{schedule.timezone}"


def ticks_between(schedule: Schedule, after: datetime, until: datetime,
                  limit: int = MAX_TICKS) -> tuple[list[datetime], bool]:
    """The schedule's ticks in (after, until], in UTC; and whether more than ``limit``
    were due (then the newest ``limit`` are returned)."""
    newest: deque[datetime] = deque(maxlen=limit)
    count = 0
    for tick in cron_ticks.ticks_between(schedule.cron, schedule.timezone, after, until):
        newest.append(tick)
        count += 1
    return list(newest), count > limit


def chosen(schedule: Schedule, due: list[datetime], now: datetime) -> list[datetime]:
    """Which of the due ticks fire, by the trigger's catch-up policy."""
    if not due:
        return []
    if schedule.catchup is CatchUp.ALL:
        return due
    if schedule.catchup is CatchUp.LAST:
        return due[-1:]
    return [t for t in due if now - t <= ON_TIME]


def handle(session: Session, revision: FlowRevision, flow: Flow, schedule: Schedule,
           now: datetime, mapping: dict[str, Any] | None = None) -> Handled:
    """Fire what is due for one schedule trigger; the caller commits."""
    key = trigger_key(flow, schedule)
    cursor = session.scalar(select(ScheduleCursor).where(ScheduleCursor.key == key)
                            .with_for_update())
    if cursor is None:
        _start_cursor(session, key, flow, now)
        return Handled([], 0)
    due, overflow = ticks_between(schedule, cursor.last_tick, now)
    if not due:
        return Handled([], 0)
    fire_now = chosen(schedule, due, now)
    fired = []
    for tick in fire_now:
        context = {"type": TriggerType.SCHEDULE, "cron": schedule.cron,
                   "timezone": schedule.timezone, "tick": tick.isoformat(),
                   "late_s": round((now - tick).total_seconds(), 3)}
        if (started := fire(session, revision, flow, f"{key}@{tick.isoformat()}", context,
                            ORIGIN, mapping=mapping)):
            fired.append(started)
    skipped = len(due) - len(fire_now) + (1 if overflow else 0)
    if skipped:
        audit.record(session, actor=ORIGIN, action=audit.Action.SCHEDULE_SKIPPED,
                     target=flow.ref, origin=ORIGIN,
                     after={"cron": schedule.cron, "timezone": schedule.timezone,
                            "catchup": schedule.catchup.value, "skipped": skipped,
                            "more_than_listed": overflow,
                            "from": cursor.last_tick.isoformat(), "to": due[-1].isoformat()})
    cursor.last_tick, cursor.updated_at = due[-1], now
    return Handled(fired, skipped)


def _start_cursor(session: Session, key: str, flow: Flow, now: datetime) -> None:
    try:
        with session.begin_nested():
            session.add(ScheduleCursor(key=key, namespace=flow.namespace, flow_id=flow.id,
                                       last_tick=now, updated_at=now))
    except IntegrityError:
        pass  # another scheduler created it first; it starts from its own now


def tick(dispatcher: Dispatcher | None = None, now: datetime | None = None) -> Handled:
    """One pass over every schedule trigger; one transaction per trigger."""
    now = now or clock.now()
    with session_scope() as session:
        triggers = [(r.namespace, r.flow_id, i) for r in list_flows(session)
                    for i, t in enumerate(load_flow_of(r).triggers) if t.schedule]
    fired: list[Fired] = []
    skipped = 0
    for namespace, flow_id, index in triggers:
        with session_scope() as session:
            revision = get_revision(session, namespace=namespace, flow_id=flow_id)
            flow = load_flow_of(revision)
            schedule = flow.triggers[index].schedule if index < len(flow.triggers) else None
            if schedule is None:
                continue  # a new revision changed the triggers since the listing
            result = handle(session, revision, flow, schedule, now,
                            mapping=flow.triggers[index].inputs)
        fired += result.fired
        skipped += result.skipped
    send_fired(dispatcher, fired)
    return Handled(fired, skipped)


class Scheduler:
    """Runs `tick` once a second, on the second, until stopped."""

    def __init__(self, dispatcher: Dispatcher | None = None, every: float = 1.0):
        self.dispatcher, self.every = dispatcher, every
        self.stopped = threading.Event()

    def run(self) -> None:
        log.info("scheduler started")
        while not self.stopped.is_set():
            try:
                result = tick(self.dispatcher)
                for started in result.fired:
                    log.info("fired %s: run %s", started.flow, started.run_id)
            except Exception:
                log.exception("scheduler pass failed; the next one retries")
            now = clock.now()
            pause = self.every - (now.timestamp() % self.every)
            self.stopped.wait(pause)

    def stop(self) -> None:
        self.stopped.set()
