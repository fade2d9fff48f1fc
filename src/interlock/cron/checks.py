"""Late and missed cron runs: each expected run of a monitored job, checked against what
`interlock cron exec` reported.

Every expected time (`due`) of a monitored job becomes a `cron_checks` row. A reported
run that starts between `due - EARLY` and the next expected time answers it: ON_TIME when
it started within the job's grace, RAN_LATE after that. With no run, the check becomes
LATE once the grace is over and MISSED once `missed_after` (default: the next expected
time) has passed. LATE and MISSED are audited and fire `after:` triggers, e.g.
`after: {system: cron/db1, job: backup, state: missed}`.

`check` takes `now` as an argument: the tests drive it with a controllable clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.config.cron_jobs import CronJob, CronJobsError, load_cron_jobs
from interlock.config.env import settings
from interlock.dispatch.periodic import Every
from interlock.engine import ticks as cron_ticks
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher
from interlock.store.tables import CronCheck, ExternalRun, rowcount
from interlock.store.tables.cron import CheckStatus
from interlock.triggers.firing import Finished, Fired, after_finished, send_fired

log = logging.getLogger(__name__)
ACTOR = "cron-monitor"
EARLY = timedelta(seconds=60)    # a run this early still answers its tick (clock skew)
WINDOW = timedelta(days=1)       # expected runs older than this are never created


# The one transition table of a check. A final status never changes again.
TRANSITIONS: dict[CheckStatus, frozenset[CheckStatus]] = {
    CheckStatus.EXPECTED: frozenset({CheckStatus.ON_TIME, CheckStatus.LATE,
                                     CheckStatus.RAN_LATE, CheckStatus.MISSED}),
    CheckStatus.LATE: frozenset({CheckStatus.RAN_LATE, CheckStatus.MISSED}),
    CheckStatus.ON_TIME: frozenset(),
    CheckStatus.RAN_LATE: frozenset(),
    CheckStatus.MISSED: frozenset(),
}
OPEN = frozenset(s for s, targets in TRANSITIONS.items() if targets)
ALERTS = frozenset({CheckStatus.LATE, CheckStatus.MISSED})  # audited loudly, fire triggers


@dataclass(frozen=True)
class Change:
    system: str
    job_id: str
    due_at: datetime
    before: CheckStatus
    after: CheckStatus
    external_id: str | None


def expected_between(job: CronJob, after: datetime, until: datetime) -> list[datetime]:
    """The job's expected times in (after, until], UTC."""
    assert job.cron is not None
    return list(cron_ticks.ticks_between(job.cron, job.timezone, after, until))


def next_expected(job: CronJob, after: datetime) -> datetime:
    assert job.cron is not None
    return next(cron_ticks.ticks_after(job.cron, job.timezone, after))


def status_of(job: CronJob, due: datetime, now: datetime,
              started: datetime | None) -> CheckStatus:
    """What a check is, given the start of the run that answers it (None: no run yet)."""
    grace = timedelta(seconds=job.grace_s)
    if started is not None:
        return CheckStatus.ON_TIME if started <= due + grace else CheckStatus.RAN_LATE
    if now >= _missed_at(job, due):
        return CheckStatus.MISSED
    return CheckStatus.LATE if now >= due + grace else CheckStatus.EXPECTED


def _missed_at(job: CronJob, due: datetime) -> datetime:
    if job.missed_after_s is not None:
        return due + max(timedelta(seconds=job.missed_after_s), timedelta(seconds=job.grace_s))
    return max(next_expected(job, due), due + timedelta(seconds=job.grace_s))


def check(session: Session, now: datetime, jobs: list[CronJob], *,
          origin: str = ACTOR) -> tuple[list[Change], list[Fired]]:
    """Create the checks that fell due and move the open ones on; the caller commits."""
    changes: list[Change] = []
    fired: list[Fired] = []
    for job in jobs:
        if not job.monitored:
            continue
        _create_due(session, job, now)
        for row in _open_checks(session, job):
            change = _advance(session, job, row, now)
            if change is None:
                continue
            changes.append(change)
            fired += _record(session, change, origin)
    return changes, fired


def _create_due(session: Session, job: CronJob, now: datetime) -> None:
    newest = session.scalar(select(func.max(CronCheck.due_at)).where(
        CronCheck.system == job.system, CronCheck.job_id == job.id))
    # Exclusive of the newest check, inclusive of `monitor_from`.
    since = job.monitor_from - timedelta(microseconds=1) if job.monitor_from else None
    start = max(d for d in (newest, since, now - WINDOW) if d is not None)
    for due in expected_between(job, start, now):
        try:
            with session.begin_nested():
                session.add(CronCheck(system=job.system, job_id=job.id, due_at=due,
                                      status=CheckStatus.EXPECTED.value, updated_at=now))
        except IntegrityError:
            pass  # another monitor created it


def _open_checks(session: Session, job: CronJob) -> list[CronCheck]:
    return list(session.scalars(select(CronCheck).where(
        CronCheck.system == job.system, CronCheck.job_id == job.id,
        CronCheck.status.in_([s.value for s in OPEN])).order_by(CronCheck.due_at)))


def _answering_run(session: Session, job: CronJob, due: datetime) -> ExternalRun | None:
    until = next_expected(job, due) - EARLY
    return session.scalars(select(ExternalRun).where(
        ExternalRun.system == job.system, ExternalRun.job_id == job.id,
        ExternalRun.started_at >= due - EARLY, ExternalRun.started_at < until)
        .order_by(ExternalRun.started_at).limit(1)).first()


def _advance(session: Session, job: CronJob, row: CronCheck, now: datetime) -> Change | None:
    run = _answering_run(session, job, row.due_at)
    before = CheckStatus(row.status)
    after = status_of(job, row.due_at, now, run.started_at if run else None)
    if after is before or after not in TRANSITIONS[before]:
        return None
    values: dict[str, object] = {"status": after.value, "updated_at": now}
    if run is not None:
        values |= {"external_id": run.external_id, "started_at": run.started_at}
    moved = session.execute(update(CronCheck).where(
        CronCheck.id == row.id, CronCheck.status == before.value).values(**values))
    if rowcount(moved) != 1:
        return None  # another monitor moved it first
    return Change(job.system, job.id, row.due_at, before, after,
                  run.external_id if run else None)


def _record(session: Session, change: Change, origin: str) -> list[Fired]:
    target = f"{change.system}/{change.job_id}"
    audit.record(session, actor=ACTOR, action=audit.Action.CRON_CHECK, target=target,
                 origin=origin, before={"status": change.before.value},
                 after={"status": change.after.value, "due_at": change.due_at.isoformat(),
                        "run": change.external_id})
    if change.after not in ALERTS:
        return []
    finished = Finished(system=change.system, job_id=change.job_id,
                        external_id=f"{change.after.value}@{change.due_at.isoformat()}",
                        state=change.after.value, remote_status=change.after.value,
                        run_type="cron-check")
    return after_finished(session, finished, origin=origin)


class Monitor:
    """Runs `check` every INTERLOCK_CRON_CHECK_SECONDS from the reconciler (0: never),
    over every monitored job."""

    name = "cron-monitor"

    def __init__(self) -> None:
        self._every = Every()

    def maybe_tick(self, dispatcher: Dispatcher) -> int:
        every = settings().cron_check_s
        if every <= 0 or not self._every.due(every):
            return 0
        try:
            jobs = [j for by_id in load_cron_jobs().values() for j in by_id.values()]
        except CronJobsError as exc:
            log.warning("cron monitor: %s", exc)
            return 0
        if not any(j.monitored for j in jobs):
            return 0
        with session_scope() as session:
            changes, fired = check(session, clock.now(), jobs)
        send_fired(dispatcher, fired)
        return len(changes)
