"""The deadline monitor, a periodic job of the reconciler (every
INTERLOCK_DEADLINES_SECONDS): it gives runs of flows with `sla:` their deadline rows, flags
LATE what passed its due before it succeeded, settles what finished in time, and raises
`at_risk` on running runs (and nodes) whose finish estimated from history passes the due.

`check` takes `now` as an argument: the tests drive it with a controllable clock.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.config.env import settings
from interlock.deadlines import flags
from interlock.deadlines.due import anchor_of, due_at
from interlock.deadlines.estimate import Estimate, Progress, estimate
from interlock.deadlines.flags import Flag
from interlock.deadlines.history import History
from interlock.dispatch.periodic import Every
from interlock.spec.models import Flow
from interlock.spec.sla import Sla
from interlock.states import NODE_IN_FLIGHT, NODE_TERMINAL, RUN_TERMINAL, NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run, load_flow_of
from interlock.store.outbox import Dispatcher
from interlock.store.runs import Loaded, load
from interlock.store.tables import Deadline, DeadlineState, FlowRevision, Run
from interlock.store.tables.deadlines import RUN_LEVEL
from interlock.triggers.firing import Fired, send_fired

log = logging.getLogger(__name__)
LOOKBACK = timedelta(hours=1)  # runs that finished this recently still get their rows
SCAN = 1000                     # runs given rows per tick (the rest at the next)
WATCHED = 2000                  # watching rows moved on per tick: the soonest due first
# Runs whose finish is estimated: started, or waiting to be (a queued run's path is whole).
_GOING = frozenset({RunState.PENDING.value, RunState.QUEUED.value, RunState.RUNNING.value})
_DONE_QUIETLY = frozenset({NodeState.SKIPPED.value, NodeState.CANCELLED.value,
                           RunState.CANCELLED.value})


def check(session: Session, now: datetime, *,
          origin: str = flags.ACTOR) -> tuple[list[Flag], list[Fired]]:
    """Create the rows runs lack, then move every watching row on; the caller commits."""
    _create_rows(session, now)
    history = History(session)
    found: list[Flag] = []
    fired: list[Fired] = []
    by_run: dict[str, list[Deadline]] = {}
    for row in session.scalars(select(Deadline).where(
            Deadline.state == DeadlineState.WATCHING.value)
            .order_by(Deadline.due_at.asc().nulls_last(), Deadline.id).limit(WATCHED)):
        by_run.setdefault(row.run_id, []).append(row)
    for run_id, rows in by_run.items():
        loaded = load(session, run_id)
        for row in rows:
            flag_list, started = _advance(session, loaded, row, now, history, origin)
            found += flag_list
            fired += started
    return found, fired


def _create_rows(session: Session, now: datetime) -> None:
    """Rows for the runs (active, or finished within LOOKBACK) of revisions with `sla:`:
    the revisions are sorted out first, so runs of flows without one never crowd them out."""
    lacking = (or_(Run.state.notin_([s.value for s in RUN_TERMINAL]),
                   Run.finished_at >= now - LOOKBACK),
               ~exists().where(Deadline.run_id == Run.id))
    revisions = session.scalars(select(Run.flow_revision_id).where(*lacking).distinct())
    with_sla = [r for r in revisions if _has_sla(session, r)]
    if not with_sla:
        return
    runs = session.scalars(select(Run).where(*lacking, Run.flow_revision_id.in_(with_sla))
                           .order_by(Run.created_at).limit(SCAN))
    for run in runs:
        flow = flow_of_run(session, run)
        anchor = anchor_of(run.trigger, run.created_at)
        wanted: list[tuple[str, datetime | None]] = []
        if flow.sla is not None:
            wanted.append((RUN_LEVEL, due_at(flow, flow.sla, started=run.created_at,
                                             anchor=anchor)))
        wanted += [(nid, due_at(flow, node.sla, started=None, anchor=anchor))
                   for nid, node in flow.nodes.items() if node.sla is not None]
        for node_id, due in wanted:
            try:
                with session.begin_nested():
                    session.add(Deadline(run_id=run.id, node_id=node_id, due_at=due,
                                         state=DeadlineState.WATCHING.value))
            except IntegrityError:
                pass  # another monitor made it


def _has_sla(session: Session, revision_id: int) -> bool:
    revision = session.get(FlowRevision, revision_id)
    if revision is None:
        return False
    flow = load_flow_of(revision)
    return flow.sla is not None or any(n.sla is not None for n in flow.nodes.values())


def _advance(session: Session, loaded: Loaded, row: Deadline, now: datetime,
             history: History, origin: str) -> tuple[list[Flag], list[Fired]]:
    run, flow = loaded.run, loaded.flow
    sla = flow.sla if row.node_id == RUN_LEVEL else _node_sla(flow, row.node_id)
    if sla is None:  # cannot happen for a pinned revision; never watched for ever
        flags.settle(session, row, DeadlineState.VOID)
        return [], []
    due = _due(loaded, row, sla)
    if due != row.due_at and due is not None:
        flags.set_due(session, row, due)
        row.due_at = due
    state, ended = _outcome(loaded, row.node_id)
    if state == NodeState.SUCCEEDED.value and (due is None or ended is None or ended <= due):
        flags.settle(session, row, DeadlineState.MET)
        return [], []
    if state in _DONE_QUIETLY and (due is None or ended is None or ended <= due):
        flags.settle(session, row, DeadlineState.VOID)
        return [], []
    if due is None:
        if run.state in {s.value for s in RUN_TERMINAL}:  # a node that never started
            flags.settle(session, row, DeadlineState.VOID)
        return [], []
    if (ended is not None and state == NodeState.SUCCEEDED.value) or now >= due:
        flag, fired = flags.mark_late(session, row, run, now, finished=ended is not None,
                                      origin=origin)
        return ([flag] if flag else []), fired
    if run.state not in _GOING or row.at_risk_at is not None:
        return [], []
    est = _estimate(loaded, row.node_id, now, history)
    if est.finish <= due:
        return [], []
    flag, fired = flags.mark_at_risk(session, row, run, est, now, origin=origin)
    return ([flag] if flag else []), fired


def _node_sla(flow: Flow, node_id: str) -> Sla | None:
    node = flow.nodes.get(node_id)
    return node.sla if node is not None else None


def _due(loaded: Loaded, row: Deadline, sla: Sla) -> datetime | None:
    run = loaded.run
    anchor = anchor_of(run.trigger, run.created_at)
    if row.node_id == RUN_LEVEL:
        started: datetime | None = run.created_at
    else:
        attempts = loaded.attempts.get(row.node_id, [])
        started = attempts[0].created_at if attempts else None
    return due_at(loaded.flow, sla, started=started, anchor=anchor)


def _outcome(loaded: Loaded, node_id: str) -> tuple[str, datetime | None]:
    """The state and, when it is final, the time it ended."""
    if node_id == RUN_LEVEL:
        run = loaded.run
        ended = run.finished_at if run.state in {s.value for s in RUN_TERMINAL} else None
        return run.state, ended
    node = loaded.nodes.get(node_id)
    if node is None:
        return NodeState.PENDING.value, None
    if NodeState(node.state) not in NODE_TERMINAL:
        return node.state, None
    attempts = loaded.attempts.get(node_id, [])
    ended = attempts[-1].finished_at if attempts and attempts[-1].finished_at else None
    return node.state, ended or node.updated_at


def _estimate(loaded: Loaded, node_id: str, now: datetime, history: History) -> Estimate:
    progress: dict[str, Progress] = {}
    for nid in loaded.flow.nodes:
        node = loaded.nodes.get(nid)
        state = NodeState(node.state) if node is not None else NodeState.PENDING
        attempts = loaded.attempts.get(nid, [])
        if state in NODE_TERMINAL:
            progress[nid] = Progress(done=True)
        elif state in NODE_IN_FLIGHT and attempts:
            progress[nid] = Progress(since=attempts[-1].created_at)
        else:
            progress[nid] = Progress()
    run = loaded.run
    p90 = {nid: history.p90_of(run.namespace, run.flow_id, nid, node)
           for nid, node in loaded.flow.nodes.items() if not progress[nid].done}
    return estimate(loaded.graph, progress, p90, now,
                    target=None if node_id == RUN_LEVEL else node_id)


class Monitor:
    """Runs `check` every INTERLOCK_DEADLINES_SECONDS from the reconciler (0: never)."""

    name = "deadline-monitor"

    def __init__(self) -> None:
        self._every = Every()

    def maybe_tick(self, dispatcher: Dispatcher) -> int:
        every = settings().deadlines_s
        if every <= 0 or not self._every.due(every):
            return 0
        with session_scope() as session:
            found, fired = check(session, clock.now())
        send_fired(dispatcher, fired)
        return len(found)
