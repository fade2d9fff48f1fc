"""What the API shows about legacy cron jobs: each job's last run and expected runs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.config.cron_jobs import CronJob, get_job, load_cron_jobs
from interlock.cron.checks import CheckStatus, next_expected
from interlock.store.tables import CronCheck, ExternalRun


class CronRunView(BaseModel):
    run: str
    state: str
    remote_status: str
    started_at: datetime | None
    ended_at: datetime | None
    exit_code: int | None
    duration_s: float | None


class CheckView(BaseModel):
    due_at: datetime
    status: CheckStatus
    run: str | None
    started_at: datetime | None


class CronJobView(BaseModel):
    system: str
    job: str
    schedule: str
    timezone: str
    command: str
    monitored: bool
    grace_s: float
    next_due: datetime | None
    status: CheckStatus | None      # of the newest expected run; None when never expected
    last_check: CheckView | None
    last_run: CronRunView | None


def list_jobs(session: Session, *, system: str | None = None,
              status: CheckStatus | None = None) -> list[CronJobView]:
    views = [job_view(session, job) for by_id in load_cron_jobs().values()
             for job in by_id.values() if system in (None, job.system)]
    return [v for v in views if status in (None, v.status)]


def job_view(session: Session, job: CronJob) -> CronJobView:
    check = session.scalars(select(CronCheck).where(
        CronCheck.system == job.system, CronCheck.job_id == job.id)
        .order_by(CronCheck.due_at.desc()).limit(1)).first()
    run = session.scalars(select(ExternalRun).where(
        ExternalRun.system == job.system, ExternalRun.job_id == job.id)
        .order_by(ExternalRun.started_at.desc()).limit(1)).first()
    return CronJobView(
        system=job.system, job=job.id, schedule=job.schedule, timezone=job.timezone,
        command=job.command, monitored=job.monitored, grace_s=job.grace_s,
        next_due=next_expected(job, clock.now()) if job.cron else None,
        status=CheckStatus(check.status) if check else None,
        last_check=_check_view(check) if check else None,
        last_run=_run_view(run) if run else None)


def checks_of(session: Session, system: str, job_id: str, *, limit: int) -> list[CheckView]:
    get_job(system, job_id)  # NotFound-like error for an unknown job
    rows = session.scalars(select(CronCheck).where(
        CronCheck.system == system, CronCheck.job_id == job_id)
        .order_by(CronCheck.due_at.desc()).limit(limit))
    return [_check_view(r) for r in rows]


def _check_view(row: CronCheck) -> CheckView:
    return CheckView(due_at=row.due_at, status=CheckStatus(row.status), run=row.external_id,
                     started_at=row.started_at)


def _run_view(row: ExternalRun) -> CronRunView:
    details = row.details or {}
    return CronRunView(run=row.external_id, state=row.state, remote_status=row.remote_status,
                       started_at=row.started_at, ended_at=row.ended_at,
                       exit_code=details.get("exit_code"), duration_s=details.get("duration_s"))
