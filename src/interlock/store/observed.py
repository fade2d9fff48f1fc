"""The store's side of `interlock.adapters.observed`: the read API adapters use."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from interlock.adapters.observed import ObservedRun, provide
from interlock.states import NodeState
from interlock.store.db import session_scope
from interlock.store.tables import CronCheck, ExternalRun
from interlock.store.tables.cron import CheckStatus


class StoreObserved:
    def first_run_since(self, system: str, job_id: str, since: datetime) -> ObservedRun | None:
        with session_scope() as session:
            run = session.scalars(select(ExternalRun).where(
                ExternalRun.system == system, ExternalRun.job_id == job_id,
                ExternalRun.started_at >= since).order_by(ExternalRun.started_at)
                .limit(1)).first()
            if run is None:
                return None
            return ObservedRun(external_id=run.external_id, state=NodeState(run.state),
                               remote_status=run.remote_status, started_at=run.started_at,
                               ended_at=run.ended_at, details=dict(run.details or {}))

    def first_missed_since(self, system: str, job_id: str, since: datetime) -> datetime | None:
        with session_scope() as session:
            return session.scalars(select(CronCheck.due_at).where(
                CronCheck.system == system, CronCheck.job_id == job_id,
                CronCheck.due_at >= since, CronCheck.status == CheckStatus.MISSED.value)
                .order_by(CronCheck.due_at).limit(1)).first()


provide(StoreObserved())
