"""Per-flow statistics: runs by state, success rate, duration percentiles, last run.

Pages walk the registered flows by (namespace, flow_id), so a flow with no run in the window
still shows (with zeros) and pages do not move when runs arrive.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import ColumnElement, and_, func, select, tuple_
from sqlalchemy.orm import Session

from interlock.dashboards.models import FlowPage, FlowStats, LastRun, Latency, WindowPublic
from interlock.dashboards.percentiles import distributions
from interlock.dashboards.window import Window
from interlock.states import RUN_TERMINAL, RunState
from interlock.store import cursor as cursors
from interlock.store.tables import FlowRevision, Run

LISTING = "dashboards/flows"
Flow = tuple[str, str]


def flow_stats(session: Session, *, window: Window, namespace: str | None = None,
               limit: int, cursor: str | None = None) -> FlowPage:
    flows = _flows(session, namespace, cursor, limit + 1)
    page, more = flows[:limit], len(flows) > limit
    counts = _counts(session, window, page)
    durations = distributions(
        session, start=Run.created_at, end=Run.finished_at, keys=[Run.namespace, Run.flow_id],
        where=[_among(page), *window.where(Run.created_at)]) if page else {}
    last = _last_runs(session, window, page)
    stats = [_stats(flow, counts.get(flow, Counter()), Latency.of(durations.get(flow)),
                    last.get(flow)) for flow in page]
    return FlowPage(window=WindowPublic(since=window.since, until=window.until), flows=stats,
                    next_cursor=cursors.encode(LISTING, *page[-1]) if more else None)


def _flows(session: Session, namespace: str | None, cursor: str | None, limit: int) -> list[Flow]:
    query = select(FlowRevision.namespace, FlowRevision.flow_id).distinct()
    if namespace is not None:
        query = query.where(FlowRevision.namespace == namespace)
    if cursor is not None:
        ns, fid = cursors.decode(LISTING, cursor, str, str)
        query = query.where((FlowRevision.namespace > ns)
                            | ((FlowRevision.namespace == ns) & (FlowRevision.flow_id > fid)))
    query = query.order_by(FlowRevision.namespace, FlowRevision.flow_id).limit(limit)
    return [(ns, fid) for ns, fid in session.execute(query)]


def _among(flows: list[Flow]) -> ColumnElement[bool]:
    return tuple_(Run.namespace, Run.flow_id).in_(flows)


def _counts(session: Session, window: Window, flows: list[Flow]) -> dict[Flow, Counter[RunState]]:
    if not flows:
        return {}
    query = (select(Run.namespace, Run.flow_id, Run.state, func.count())
             .where(_among(flows), *window.where(Run.created_at))
             .group_by(Run.namespace, Run.flow_id, Run.state))
    counts: dict[Flow, Counter[RunState]] = {}
    for ns, fid, state, count in session.execute(query):
        counts.setdefault((ns, fid), Counter())[RunState(state)] = count
    return counts


def _last_runs(session: Session, window: Window, flows: list[Flow]) -> dict[Flow, LastRun]:
    """The newest run of each flow created before the window's end (ties: the highest id)."""
    if not flows:
        return {}
    before = [Run.created_at < window.until] if window.until is not None else []
    newest = (select(Run.namespace, Run.flow_id, func.max(Run.created_at).label("at"))
              .where(_among(flows), *before).group_by(Run.namespace, Run.flow_id).subquery())
    query = (select(Run).join(newest, and_(Run.namespace == newest.c.namespace,
                                           Run.flow_id == newest.c.flow_id,
                                           Run.created_at == newest.c.at))
             .order_by(Run.id))
    last: dict[Flow, LastRun] = {}
    for run in session.scalars(query):  # ascending ids: the highest of a tie wins
        last[(run.namespace, run.flow_id)] = LastRun(
            id=run.id, state=RunState(run.state), created_at=run.created_at,
            finished_at=run.finished_at)
    return last


def _stats(flow: Flow, counts: Counter[RunState], duration: Latency,
           last: LastRun | None) -> FlowStats:
    finished = sum(counts[s] for s in RUN_TERMINAL)
    return FlowStats(namespace=flow[0], flow_id=flow[1], runs=dict(counts),
                     total=sum(counts.values()),
                     success_rate=counts[RunState.SUCCEEDED] / finished if finished else None,
                     duration=duration, last_run=last)
