"""Runs: creation, the planner's snapshot, listing, cancel and retry requests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, false, insert, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session, make_transient_to_detached

from interlock import clock
from interlock.engine.snapshot import ApprovalView, AttemptView, NodeView, RunView
from interlock.errors import Conflict, NotFound
from interlock.spec.graph import FlowGraph
from interlock.spec.models import Flow
from interlock.spec.namespaces import EVERYWHERE, root
from interlock.states import (
    NODE_FAILURES,
    RUN_CANCELLABLE,
    RUN_RETRYABLE,
    ApprovalState,
    NodeState,
    RunState,
    SkipCause,
)
from interlock.store import approvals as approval_store
from interlock.store import audit, facts, outbox
from interlock.store.flows import flow_of_run, load_flow_of
from interlock.store.tables import (
    NODE_RUNS,
    RUNS,
    ApprovalRequest,
    Attempt,
    Entity,
    FlowRevision,
    NodeRun,
    Run,
    StateEvent,
    TaskKind,
)
from interlock.store.transitions import (
    append_event,
    set_node_state,
    set_run_state,
)

_INSERT_RUN = insert(RUNS)
# The columns a new run's and node's rows leave NULL: set on the rows a start plans from, so
# reading one of them never loads it from the store.
_RUN_UNSET = {"reason": None, "finished_at": None, "wake_at": None, "waiting_for": None}
_NODE_UNSET = {"retry_at": None, "error": None, "reason": None, "skip_cause": None,
               "waiting_for": None}
# Where a node may stand behind a gate a policy imposed on it (`approval:` on a rule): its
# request must be read to know the gate.
_MAY_HOLD_IMPOSED = frozenset({NodeState.APPROVAL_WAIT.value, NodeState.SLOT_WAIT.value,
                               NodeState.RETRY_WAIT.value})


@dataclass
class Loaded:
    """A run with everything the planner and the API need, read in one transaction."""

    run: Run
    flow: Flow
    nodes: dict[str, NodeRun]
    attempts: dict[str, list[Attempt]]  # by node id, oldest first
    approvals: dict[str, ApprovalRequest] = field(default_factory=dict)  # newest, by node

    @cached_property
    def graph(self) -> FlowGraph:
        return FlowGraph(self.flow)

    def view(self) -> RunView:
        return RunView(run_id=self.run.id, state=RunState(self.run.state), inputs=self.run.inputs,
                       trace_id=self.run.trace_id,
                       nodes={nid: _node_view(n, self.attempts.get(nid, []),
                                              self.approvals.get(nid))
                              for nid, n in self.nodes.items()})


def _node_view(node: NodeRun, attempts: list[Attempt],
               request: ApprovalRequest | None) -> NodeView:
    return NodeView(state=NodeState(node.state), retry_at=node.retry_at, outputs=node.outputs,
                    retry_base=node.retry_base, approval=_approval_view(request),
                    attempts=tuple(AttemptView(number=a.number, state=NodeState(a.state),
                                               created_at=a.created_at, finished_at=a.finished_at,
                                               outputs=a.outputs, error=a.error)
                                   for a in attempts))


def _approval_view(row: ApprovalRequest | None) -> ApprovalView | None:
    if row is None:
        return None
    return ApprovalView(request_id=row.id, state=ApprovalState(row.state),
                        payload_hash=row.payload_hash, created_at=row.created_at,
                        deadline=row.deadline, escalate_at=row.escalate_at,
                        escalated=row.escalated_at is not None,
                        next_remind_at=row.next_remind_at, option=row.option,
                        inputs=row.decision_inputs, decided_by=tuple(row.decided_by),
                        reason=row.reason)


def new_id() -> str:
    return uuid.uuid4().hex


def create_run(session: Session, *, revision: FlowRevision, inputs: dict[str, Any],
               trigger: dict[str, Any], actor: str, origin: str = audit.LOCAL_ORIGIN,
               trace_id: str | None = None) -> str:
    """A new run, pending, and the ADVANCE work that makes a worker plan it; its id.
    ``trace_id`` continues a trace (what fired it was part of one)."""
    run, _ = _insert_run(session, revision=revision, inputs=inputs, trigger=trigger,
                         actor=actor, origin=origin, trace_id=trace_id)
    outbox.add(session, outbox.Work(TaskKind.ADVANCE, run["id"]))
    return run["id"]


def create_run_to_plan(session: Session, *, revision: FlowRevision, inputs: dict[str, Any],
                       trigger: dict[str, Any], actor: str,
                       origin: str = audit.LOCAL_ORIGIN) -> Loaded:
    """A new run, pending, for the caller to plan in this transaction
    (`dispatch.controller.plan_started`): no ADVANCE work, and its rows as the session's
    own, so the first pass reads nothing back."""
    run_values, node_values = _insert_run(session, revision=revision, inputs=inputs,
                                          trigger=trigger, actor=actor, origin=origin,
                                          trace_id=None)
    run = Run(**run_values, **_RUN_UNSET)
    nodes = {v["node_id"]: NodeRun(**v, **_NODE_UNSET) for v in node_values}
    for row in (run, *nodes.values()):
        make_transient_to_detached(row)  # as if read: persistent, unchanged, no SQL
        session.add(row)
    return load(session, run.id, run=run, nodes=nodes)


def _insert_run(session: Session, *, revision: FlowRevision, inputs: dict[str, Any],
                trigger: dict[str, Any], actor: str, origin: str,
                trace_id: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Insert a run, its nodes and its first state event; the values of the run's row and
    of its nodes' rows. Core statements: no unit of work to run for rows written once."""
    flow = load_flow_of(revision)
    at = clock.now()
    run_id = new_id()
    run = {"id": run_id, "flow_revision_id": revision.id, "namespace": revision.namespace,
           "flow_id": revision.flow_id, "revision": revision.revision,
           "state": RunState.PENDING.value, "inputs": inputs, "trigger": trigger,
           "trace_id": trace_id or uuid.uuid4().hex, "created_at": at, "updated_at": at}
    nodes = [{"run_id": run_id, "node_id": nid, "uses": node.uses,
              "state": NodeState.PENDING.value, "outputs": {}, "retry_base": 0,
              "updated_at": at} for nid, node in flow.nodes.items()]
    session.execute(_INSERT_RUN, run)
    session.execute(insert(NODE_RUNS), nodes)
    append_event(session, {"run_id": run_id, "entity": Entity.RUN.value, "node_id": None,
                           "attempt": None, "from_state": None,
                           "to_state": RunState.PENDING.value, "actor": actor,
                           "reason": f"started by {trigger.get('type', 'api')}", "at": at})
    audit.record_at_commit(session, actor=actor, action=audit.Action.RUN_CREATED,
                           target=f"runs/{run_id}", origin=origin,
                           after={"flow": flow.ref, "revision": revision.revision,
                                  # user-supplied: bounded, large parts as facts
                                  "inputs": facts.bounded_each(inputs),
                                  "trigger": facts.bounded(trigger)})
    return run, nodes


def load(session: Session, run_id: str, *, lock: bool = False, run: Run | None = None,
         nodes: dict[str, NodeRun] | None = None) -> Loaded:
    """The run and its nodes and attempts; ``lock`` serialises writers of this run.

    ``run`` is the run row when the caller has just locked it (and nothing changed it since);
    ``nodes`` its node rows, when the caller has them (a run created by this transaction).
    """
    fresh = {"populate_existing": True}  # rows changed by Core updates in this session
    if run is None:
        run = lock_run(session, run_id) if lock else session.scalars(
            select(Run).where(Run.id == run_id).execution_options(**fresh)).first()
    if run is None:
        raise NotFound(f"run `{run_id}` does not exist")
    if nodes is None:
        nodes = {n.node_id: n for n in session.scalars(
            select(NodeRun).where(NodeRun.run_id == run_id).execution_options(**fresh))}
    attempts: dict[str, list[Attempt]] = {}
    if not all(_never_attempted(n) for n in nodes.values()):  # a new run's first pass: none
        for a in session.scalars(select(Attempt).where(Attempt.run_id == run_id)
                                 .order_by(Attempt.node_id, Attempt.number)
                                 .execution_options(**fresh)):
            attempts.setdefault(a.node_id, []).append(a)
    flow = flow_of_run(session, run)
    # No query for ungated flows, unless a node may wait behind a gate a policy imposed.
    gated = any(node.gated for node in flow.nodes.values()) or any(
        n.state in _MAY_HOLD_IMPOSED for n in nodes.values())
    approvals = approval_store.latest_by_node(session, run_id) if gated else {}
    return Loaded(run=run, flow=approval_store.with_imposed_gates(flow, approvals),
                  nodes=nodes, attempts=attempts, approvals=approvals)


def _never_attempted(node: NodeRun) -> bool:
    """A node leaves PENDING with its first attempt, and comes back to it only by a retry
    of the run, which keeps the number of its last attempt as its retry base."""
    return node.state == NodeState.PENDING.value and not node.retry_base


def inputs_of(session: Session, run_id: str) -> dict[str, Any] | None:
    return session.scalar(select(Run.inputs).where(Run.id == run_id))


def lock_run(session: Session, run_id: str) -> Run:
    """Take the run's row lock (PostgreSQL; SQLite transactions are already exclusive)."""
    query = select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    run = session.scalars(query).first()
    if run is None:
        raise NotFound(f"run `{run_id}` does not exist")
    return run


def request_cancel(session: Session, *, run_id: str, actor: str,
                   origin: str = audit.LOCAL_ORIGIN) -> Run:
    run = lock_run(session, run_id)
    state = RunState(run.state)
    if state not in RUN_CANCELLABLE:
        raise Conflict(f"run `{run_id}` is {state.value}; only pending or running runs can be "
                       "cancelled")
    set_run_state(session, run_id=run_id, expected=state, to=RunState.CANCELLING, actor=actor,
                  reason="cancel requested", origin=origin)
    outbox.add(session, outbox.Work(TaskKind.ADVANCE, run_id))
    return run


def request_retry(session: Session, *, run_id: str, actor: str,
                  origin: str = audit.LOCAL_ORIGIN) -> list[str]:
    """Re-open the nodes that did not succeed (and those skipped because of them).

    Succeeded nodes keep their outputs; the re-opened nodes start again at attempt
    numbers after their last one, so idempotency keys never repeat.
    """
    loaded = load(session, run_id, lock=True)
    state = RunState(loaded.run.state)
    if state not in RUN_RETRYABLE:
        raise Conflict(f"run `{run_id}` is {state.value}; only failed or cancelled runs can be "
                       "retried")
    reopened = [nid for nid, n in loaded.nodes.items() if _reopened_by_retry(n)]
    for nid in reopened:
        made = loaded.attempts.get(nid, [])
        set_node_state(session, run_id=run_id, node_id=nid,
                       expected=NodeState(loaded.nodes[nid].state), to=NodeState.PENDING,
                       actor=actor, reason="retry requested", error=None, retry_at=None,
                       retry_base=made[-1].number if made else 0)
    # Pending again: its first pass admits it under its limits like a new run (`retry` must
    # not slip past a flow's or namespace's concurrency limit).
    set_run_state(session, run_id=run_id, expected=state, to=RunState.PENDING, actor=actor,
                  reason=f"retry of {', '.join(reopened)}", origin=origin, finished_at=None)
    outbox.add(session, outbox.Work(TaskKind.ADVANCE, run_id))
    return reopened


REOPENED_SKIPS = frozenset({SkipCause.UPSTREAM.value, SkipCause.REJECTED.value})


def _reopened_by_retry(node: NodeRun) -> bool:
    """Failed, or skipped because an upstream node did not succeed; a node skipped by its own
    `if:` stays skipped (decided by the persisted cause, never by the reason's prose)."""
    return NodeState(node.state) in NODE_FAILURES or node.skip_cause in REOPENED_SKIPS


@dataclass(frozen=True)
class RunFilter:
    state: RunState | None = None
    namespace: str | None = None
    flow_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    namespaces: list[str] | None = None  # patterns the caller may see; None: every namespace
    system: str | None = None  # runs with a node attempted on this system (`with.system`)


def list_runs(session: Session, *, filters: RunFilter, limit: int,
              before: tuple[datetime, str] | None = None) -> list[Run]:
    """Newest first; ``before`` is the (created_at, id) cursor of the previous page's last row."""
    query = select(Run)
    if filters.state is not None:
        query = query.where(Run.state == filters.state.value)
    if filters.namespace is not None:
        query = query.where(Run.namespace == filters.namespace)
    if filters.namespaces is not None:
        query = query.where(in_namespaces(Run.namespace, filters.namespaces))
    if filters.flow_id is not None:
        query = query.where(Run.flow_id == filters.flow_id)
    if filters.system is not None:  # attempts are indexed by run: one probe per candidate
        query = query.where(select(Attempt.id).where(
            Attempt.run_id == Run.id, Attempt.system == filters.system).exists())
    if filters.created_after is not None:
        query = query.where(Run.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(Run.created_at < filters.created_before)
    if before is not None:
        at, rid = before
        query = query.where((Run.created_at < at) | ((Run.created_at == at) & (Run.id < rid)))
    return list(session.scalars(query.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit)))


def events_of(session: Session, run_id: str) -> list[StateEvent]:
    return list(session.scalars(select(StateEvent).where(StateEvent.run_id == run_id)
                                .order_by(StateEvent.id)))


def in_namespaces(column: InstrumentedAttribute[str], patterns: list[str]) -> ColumnElement[bool]:
    """Rows whose namespace one of ``patterns`` covers (`interlock.spec.namespaces`)."""
    if EVERYWHERE in patterns:
        return true()
    terms: list[ColumnElement[bool]] = []
    for pattern in patterns:
        anchor = root(pattern)
        escaped = anchor.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        terms += [column == anchor, column.like(escaped + ".%", escape="\\")]
    return or_(*terms) if terms else false()
