"""Slots in the store: lock a scope's row, count what holds its slots and what waits ahead,
and find the waiters to wake when a slot frees.

Everyone who admits into a scope or frees one of its slots first locks the scope's row
(an upsert: a row lock on PostgreSQL; SQLite transactions are already serial), in key
order, after their own run's row. Counting after the lock sees every committed change
(PostgreSQL READ COMMITTED takes a new snapshot per statement), so two admitters never
take the same free slot, and a waiter queued while a slot frees is always woken: either
the freer commits first (the waiter then sees the slot) or the waiter does (the freer then
sees the waiter).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, func, or_, select
from sqlalchemy.orm import Session

from interlock.limits.scopes import FLOW, SYSTEM, Scope
from interlock.spec.concurrency import Overflow
from interlock.states import NODE_IN_FLIGHT, RUN_ACTIVE, NodeState, RunState
from interlock.store.base import dialect_insert
from interlock.store.tables import Attempt, ConcurrencyScope, NodeRun, Run

SCOPES = cast(Table, ConcurrencyScope.__table__)
_ACTIVE = [s.value for s in RUN_ACTIVE]
_IN_FLIGHT = [s.value for s in NODE_IN_FLIGHT]


def lock(session: Session, scopes: Iterable[Scope]) -> None:
    """Lock every scope's row, in key order (so two transactions never wait on each other)."""
    for key in sorted({scope.key for scope in scopes}):
        insert = dialect_insert(session, SCOPES).values(scope=key, bumps=0)
        # The no-op update is what takes the row lock when the row exists.
        session.execute(insert.on_conflict_do_update(index_elements=["scope"],
                                                     set_={"bumps": SCOPES.c.bumps}))


def run_is_held(session: Session, run: Run, scopes: Iterable[Scope]) -> Scope | None:
    """The first of ``scopes`` (locked) with no slot for ``run``: its runs in flight, plus
    for `queue` the runs ahead of it (queued for the scope, or not planned yet, and created
    before it: runs start in the order they were started), fill its limit. None: it may
    start."""
    for scope in scopes:
        taken = _active(session, scope)
        if scope.behavior is Overflow.QUEUE:
            taken += session.scalar(select(func.count()).select_from(Run).where(
                _in_scope(scope), Run.id != run.id,
                or_(and_(Run.state == RunState.QUEUED.value, Run.waiting_for == scope.key),
                    Run.state == RunState.PENDING.value),
                or_(Run.created_at < run.created_at,
                    and_(Run.created_at == run.created_at, Run.id < run.id)))) or 0
        if taken >= scope.limit:
            return scope
    return None


def node_is_held(session: Session, scope: Scope, *, run_id: str, node_id: str,
                 waiting_since: datetime | None) -> bool:
    """Whether ``scope`` (a system, locked) has no slot for this node: attempts in flight on
    the system plus the nodes that started waiting before it fill the limit."""
    ahead_of = [NodeRun.state == NodeState.SLOT_WAIT.value, NodeRun.waiting_for == scope.key,
                or_(NodeRun.run_id != run_id, NodeRun.node_id != node_id)]
    if waiting_since is not None:  # it waits itself: only those that waited longer count
        ahead_of.append(or_(NodeRun.updated_at < waiting_since,
                            and_(NodeRun.updated_at == waiting_since,
                                 or_(NodeRun.run_id < run_id,
                                     and_(NodeRun.run_id == run_id,
                                          NodeRun.node_id < node_id)))))
    ahead = session.scalar(select(func.count()).select_from(NodeRun).where(*ahead_of))
    return _in_flight(session, scope) + (ahead or 0) >= scope.limit


def runs_to_wake(session: Session, scope: Scope) -> list[str]:
    """The runs of the oldest waiters for ``scope`` (locked), one per slot free now: to plan
    again (each checks its own turn; a run that started and left slots free wakes the next
    too)."""
    if scope.kind == SYSTEM:
        free = scope.limit - _in_flight(session, scope)
        query = (select(NodeRun.run_id).where(NodeRun.state == NodeState.SLOT_WAIT.value,
                                              NodeRun.waiting_for == scope.key)
                 .order_by(NodeRun.updated_at, NodeRun.run_id, NodeRun.node_id))
    else:
        free = scope.limit - _active(session, scope)
        query = (select(Run.id).where(Run.state == RunState.QUEUED.value,
                                      Run.waiting_for == scope.key)
                 .order_by(Run.created_at, Run.id))
    if free <= 0:
        return []
    return list(dict.fromkeys(row[0] for row in session.execute(query.limit(free))))


def _active(session: Session, scope: Scope) -> int:
    return session.scalar(select(func.count()).select_from(Run)
                          .where(_in_scope(scope), Run.state.in_(_ACTIVE))) or 0


def _in_flight(session: Session, scope: Scope) -> int:
    return session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.system == scope.name, Attempt.state.in_(_IN_FLIGHT))) or 0


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    if scope.kind == FLOW:
        namespace, _, flow_id = scope.name.rpartition("/")
        return and_(Run.namespace == namespace, Run.flow_id == flow_id)
    return Run.namespace == scope.name
