"""Runs by system, state, flow and time window, newest first, in keyset pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from interlock.dashboards.keys import attempt_system
from interlock.dashboards.models import DashboardRun, DashboardRunPage, WindowPublic
from interlock.dashboards.window import Window
from interlock.states import RunState
from interlock.store import cursor as cursors
from interlock.store.tables import Attempt, Run
from interlock.store.views import RunSummary

LISTING = "dashboards/runs"


@dataclass(frozen=True)
class RunQuery:
    window: Window
    state: RunState | None = None
    namespace: str | None = None
    flow_id: str | None = None
    system: str | None = None   # a run touches it when one of its attempts does


def list_runs(session: Session, *, query: RunQuery, limit: int,
              cursor: str | None = None) -> DashboardRunPage:
    """Runs created in the window matching every filter; ``cursor`` continues a listing.

    The order is (created_at, id) descending, so runs created after the first page never
    shift the later pages: nothing repeats and nothing is skipped.
    """
    rows = list(session.scalars(_select(query, cursor).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    touched = _systems_of(session, [r.id for r in page])
    runs = [_item(r, touched.get(r.id, {})) for r in page]
    last = page[-1] if more else None
    return DashboardRunPage(
        window=WindowPublic(since=query.window.since, until=query.window.until), runs=runs,
        next_cursor=cursors.encode(LISTING, last.created_at, last.id) if last else None)


def _select(query: RunQuery, cursor: str | None) -> Select[Run]:
    stmt = select(Run).where(*query.window.where(Run.created_at))
    if query.state is not None:
        stmt = stmt.where(Run.state == query.state.value)
    if query.namespace is not None:
        stmt = stmt.where(Run.namespace == query.namespace)
    if query.flow_id is not None:
        stmt = stmt.where(Run.flow_id == query.flow_id)
    if query.system is not None:
        stmt = stmt.where(exists().where(Attempt.run_id == Run.id,
                                         attempt_system() == query.system))
    if cursor is not None:
        at, run_id = cursors.decode(LISTING, cursor, datetime, str)
        stmt = stmt.where((Run.created_at < at) | ((Run.created_at == at) & (Run.id < run_id)))
    return stmt.order_by(Run.created_at.desc(), Run.id.desc())


def _systems_of(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    """Attempts per touched system, per run."""
    if not run_ids:
        return {}
    system = attempt_system()
    rows = session.execute(select(Attempt.run_id, system, func.count())
                           .where(Attempt.run_id.in_(run_ids))
                           .group_by(Attempt.run_id, system))
    found: dict[str, dict[str, int]] = {}
    for run_id, name, count in rows:
        found.setdefault(run_id, {})[name] = count
    return found


def _item(run: Run, systems: dict[str, int]) -> DashboardRun:
    duration = (run.finished_at - run.created_at).total_seconds() if run.finished_at else None
    return DashboardRun(**RunSummary.of(run).model_dump(), systems=sorted(systems),
                        attempts=sum(systems.values()), duration_s=duration)
