"""Legacy cron jobs: last runs, and expected runs that came on time, late or never."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import requires
from interlock.config.cron_jobs import CRON_KIND, cron_system
from interlock.cron.checks import CheckStatus
from interlock.cron.status import CheckView, CronJobView
from interlock.operations import reads

router = APIRouter(prefix="/cron", tags=[CRON_KIND], responses=ERROR_RESPONSES)


@router.get("/jobs", dependencies=[requires(Permission.SYSTEMS_READ)],
            response_model=list[CronJobView])
def jobs(system: Annotated[str | None, Query(description="e.g. cron/db1")] = None,
         status: Annotated[CheckStatus | None, Query(
             description="only jobs whose newest expected run has this status")] = None,
         ) -> list[CronJobView]:
    return reads.cron_jobs(system=system, status=status)


@router.get("/jobs/{host}/{job}/checks", dependencies=[requires(Permission.SYSTEMS_READ)],
            response_model=list[CheckView])
def checks(host: str, job: str,
           limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[CheckView]:
    """Expected runs of `cron/{host}`'s job, newest first."""
    return reads.cron_checks(cron_system(host), job, limit=limit)
