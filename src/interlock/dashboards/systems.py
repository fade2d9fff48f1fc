"""Per-system statistics from the store alone: no foreign system is called.

A system is a registered one (the systems file) or an adapter kind seen in attempts; the
attempts counted are those created in the window, grouped by :func:`keys.attempt_system`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from interlock.adapters.registry import default_registry
from interlock.config.systems import Systems, load_systems
from interlock.dashboards import contact
from interlock.dashboards.keys import attempt_system, kind_of
from interlock.dashboards.models import (
    HealthStatus,
    Latency,
    SystemHealth,
    SystemsReport,
    SystemStats,
    WindowPublic,
)
from interlock.dashboards.percentiles import distributions
from interlock.dashboards.window import Window
from interlock.states import NODE_ENDED, NODE_IN_FLIGHT, NodeState
from interlock.store.tables import Attempt, ExternalRun

OVERDUE_POLL = timedelta(seconds=60)  # a running attempt's poll this late: nobody polls it
DEGRADED_SHARE = 0.1                  # lost or submit-retried attempts above this: degraded
ENDED = NODE_ENDED


@dataclass
class _Tally:
    by_state: Counter[NodeState] = field(default_factory=Counter)
    retried: int = 0
    polled: int = 0   # attempts followed by polling
    last_seen: datetime | None = None
    in_flight: int = 0
    overdue: int = 0

    def seen(self, at: datetime | None) -> None:
        if at is not None and (self.last_seen is None or at > self.last_seen):
            self.last_seen = at


def system_stats(session: Session, *, window: Window, now: datetime,
                 systems: Systems | None = None) -> SystemsReport:
    systems = systems if systems is not None else load_systems()
    tallies = _tallies(session, window)
    _in_flight(session, tallies, now)
    registered = _registered(systems, {kind_of(name) for name in tallies})
    for name in registered:
        tallies.setdefault(name, _Tally())
    for name, at in _foreign_seen(session, list(tallies)).items():
        tallies[name].seen(at)
    pushed = contact.pushed(session, window, list(tallies))
    foreign = contact.foreign_seen(session, window, list(tallies))
    key, where = attempt_system(), window.where(Attempt.created_at)
    run = distributions(session, start=Attempt.submitted_at, end=Attempt.finished_at,
                        keys=[key], where=where)
    queue = distributions(session, start=Attempt.created_at, end=Attempt.submitted_at,
                          keys=[key], where=where)
    stats = [SystemStats(system=name, kind=kind_of(name), registered=name in registered,
                         attempts=dict(t.by_state), success_rate=_success_rate(t),
                         run_latency=Latency.of(run.get((name,))),
                         queue_latency=Latency.of(queue.get((name,))),
                         last_seen=t.last_seen, health=_health(t),
                         contact=contact.contact(pushed.get(name), polled_attempts=t.polled,
                                                 foreign_runs=foreign.get(name, 0)))
             for name, t in sorted(tallies.items())]
    return SystemsReport(window=WindowPublic(since=window.since, until=window.until),
                         systems=stats)


def _tallies(session: Session, window: Window) -> dict[str, _Tally]:
    key = attempt_system()
    # Each submit records its try; a queued attempt that has tried is waiting to try again.
    retried = or_(Attempt.submit_tries > 1,
                  and_(Attempt.state == NodeState.QUEUED.value, Attempt.submit_tries >= 1))
    polled = Attempt.poll_interval.is_not(None)  # set at a submit that did not finish it
    query = (select(key, Attempt.state, func.count(), func.sum(case((retried, 1), else_=0)),
                    func.sum(case((polled, 1), else_=0)),
                    func.max(Attempt.created_at), func.max(Attempt.submitted_at),
                    func.max(Attempt.finished_at))
             .where(*window.where(Attempt.created_at)).group_by(key, Attempt.state))
    tallies: dict[str, _Tally] = {}
    for name, state, count, retried_count, polled_count, *times in session.execute(query):
        tally = tallies.setdefault(name, _Tally())
        tally.by_state[NodeState(state)] += count
        tally.retried += int(retried_count or 0)
        tally.polled += int(polled_count or 0)
        for at in times:
            tally.seen(at)
    return tallies


def _in_flight(session: Session, tallies: dict[str, _Tally], now: datetime) -> None:
    """Attempts queued or running now, whatever their age (the poll index covers `state`)."""
    key = attempt_system()
    overdue = and_(Attempt.state == NodeState.RUNNING.value,
                   Attempt.next_poll_at < now - OVERDUE_POLL)
    query = (select(key, func.count(), func.sum(case((overdue, 1), else_=0)))
             .where(Attempt.state.in_([s.value for s in NODE_IN_FLIGHT])).group_by(key))
    for name, count, overdue_count in session.execute(query):
        tally = tallies.setdefault(name, _Tally())
        tally.in_flight, tally.overdue = count, int(overdue_count or 0)


def _registered(systems: Systems, kinds: set[str]) -> set[str]:
    """Names in the systems file, found by kind (`Systems` lists them only by kind)."""
    kinds = kinds | set(default_registry().kinds)
    return {s.name for kind in kinds for s in systems.of_kind(kind)}


def _foreign_seen(session: Session, names: list[str]) -> dict[str, datetime]:
    """The newest foreign run update per system (any time: `ix_external_runs_seen`)."""
    query = (select(ExternalRun.system, func.max(ExternalRun.updated_at))
             .where(ExternalRun.system.in_(names)).group_by(ExternalRun.system))
    return {name: at for name, at in session.execute(query) if at is not None}


def _success_rate(tally: _Tally) -> float | None:
    ended = sum(tally.by_state[s] for s in ENDED)
    return tally.by_state[NodeState.SUCCEEDED] / ended if ended else None


def _health(tally: _Tally) -> SystemHealth:
    attempts = sum(tally.by_state.values())
    finished = sum(tally.by_state[s] for s in ENDED) + tally.by_state[NodeState.CANCELLED]
    lost = tally.by_state[NodeState.LOST]
    lost_share = lost / finished if finished else None
    retried_share = tally.retried / attempts if attempts else None
    reasons = []
    if lost_share is not None and lost_share >= DEGRADED_SHARE:
        reasons.append(f"{lost} of {finished} finished attempts were lost")
    if retried_share is not None and retried_share >= DEGRADED_SHARE:
        reasons.append(f"{tally.retried} of {attempts} attempts needed more than one submit "
                       "(transient errors)")
    if tally.overdue:
        reasons.append(f"{tally.overdue} running attempt(s) have not been polled for over "
                       f"{OVERDUE_POLL.total_seconds():.0f} s: are the workers running?")
    status = (HealthStatus.UNKNOWN if not attempts and not tally.in_flight
              else HealthStatus.DEGRADED if reasons else HealthStatus.OK)
    return SystemHealth(status=status, reasons=reasons, in_flight=tally.in_flight,
                        overdue_polls=tally.overdue, lost=lost, lost_share=lost_share,
                        retried_submits=tally.retried, retried_share=retried_share)
