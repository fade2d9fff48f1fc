"""Dashboards: runs by system, state and window; per-system health and latency; per-flow
success rates and duration percentiles. Read-only, from the store alone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from interlock import dashboards
from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.dashboards.models import DashboardRunPage, FlowPage, SystemsReport
from interlock.operations import reads
from interlock.states import RunState

router = APIRouter(prefix="/dashboards", tags=["dashboards"], responses=ERROR_RESPONSES)

Since = Annotated[AwareDatetime | None, Query(
    description="window start, inclusive, on `created_at`; ISO 8601 with a zone")]
Until = Annotated[AwareDatetime | None, Query(
    description="window end, exclusive; must not be before `since`")]
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=1000,
                                     description="`next_cursor` of the previous page")]
Namespace = Annotated[str | None, Query(max_length=200)]


def _window(make: Callable[[datetime | None, datetime | None], dashboards.Window],
            since: datetime | None, until: datetime | None) -> dashboards.Window:
    """The window, or a 422 naming the query parameters at fault."""
    try:
        return make(since, until)
    except dashboards.WindowError as exc:
        given = {"since": since, "until": until}
        raise RequestValidationError([
            {"type": "value_error", "loc": ("query", name), "msg": str(exc),
             "input": _text(given[name])} for name in exc.fields]) from None


def _text(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


@router.get("/runs", response_model=DashboardRunPage)
def runs(since: Since = None, until: Until = None, state: RunState | None = None,
         namespace: Namespace = None,
         flow_id: Annotated[str | None, Query(max_length=128)] = None,
         system: Annotated[str | None, Query(max_length=200, description=(
             "runs with an attempt on this system: a registered one (airflow/prod) or an "
             "adapter kind without systems (script)"))] = None,
         limit: Limit = 50, cursor: Cursor = None, *,
         access: Annotated[Access, requires(Permission.RUNS_READ)]) -> DashboardRunPage:
    """Runs created in the window, newest first, each with the systems its attempts touched
    and its duration. Unbounded when `since`/`until` are left out. A caller who may read
    only some namespaces names one."""
    access.scope_to(namespace)
    query = dashboards.RunQuery(window=_window(dashboards.open_window, since, until),
                                state=state, namespace=namespace, flow_id=flow_id, system=system)
    return reads.dashboard_runs(query, limit=limit, cursor=cursor)


@router.get("/systems", response_model=SystemsReport,
            dependencies=[requires(Permission.SYSTEMS_READ)])
def systems(since: Since = None, until: Until = None) -> SystemsReport:
    """Per system (each registered one and each adapter kind seen in attempts): attempts of
    the window by state, success rate, latencies, last seen and health. Defaults to the last
    24 hours."""
    window = _window(dashboards.bounded_window, since, until)
    return reads.system_stats(window)


@router.get("/flows", response_model=FlowPage)
def flows(since: Since = None, until: Until = None, namespace: Namespace = None,
          limit: Limit = 50, cursor: Cursor = None, *,
          access: Annotated[Access, requires(Permission.FLOWS_READ)]) -> FlowPage:
    """Per registered flow, by namespace then id: runs of the window by state, success rate,
    duration percentiles and the last run. Defaults to the last 24 hours. A caller who may
    read only some namespaces names one."""
    access.scope_to(namespace)
    window = _window(dashboards.bounded_window, since, until)
    return reads.flow_stats(window, namespace=namespace, limit=limit, cursor=cursor)
