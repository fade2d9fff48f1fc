"""What people do with Interlock: register flows, start, inspect, cancel and retry runs.

The CLI and the API both call these; neither builds SQL nor touches the planner.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.access.permissions import Permission
from interlock.adapters.contract import Handle
from interlock.adapters.registry import default_registry
from interlock.approvals import people
from interlock.deadlines import rows as deadline_rows
from interlock.dispatch.controller import plan_started
from interlock.errors import Conflict, NotFound, Rejected, SpecError
from interlock.lineage.declared import record_flow
from interlock.policies import points as policy_points
from interlock.policies.model import Point
from interlock.policies.points import PolicyRefused
from interlock.secrets import masker_for
from interlock.spec.inputs import check_inputs
from interlock.spec.loader import parse_flow
from interlock.spec.models import Flow
from interlock.store import audit, idempotency
from interlock.store import cursor as cursors
from interlock.store import flows as flow_store
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher, Work
from interlock.store.tables import Run, TaskKind
from interlock.store.transitions import LostRace, batched_events
from interlock.store.views import (
    EventPublic,
    FlowRevisionPublic,
    LogPublic,
    RunDetail,
    RunPage,
    RunSummary,
)
from interlock.trace.build import build_trace
from interlock.trace.model import RunTrace
from interlock.triggers.types import TriggerType

log = logging.getLogger(__name__)


class Guard(Protocol):
    """The caller's declared permission (`interlock.api.security.Access`); None for the
    local CLI, which already holds the store. Checks happen on the resource's namespace,
    in the transaction that reads it."""

    def check(self, namespace: str | None, *, what: str = "it") -> None: ...

    def allows(self, permission: Permission, namespace: str | None) -> bool: ...


def _guard(session: Session, run_id: str, guard: Guard | None) -> None:
    """NotFound for a missing run; the guard's check on the run's namespace."""
    namespace = session.scalar(select(Run.namespace).where(Run.id == run_id))
    if namespace is None:
        raise NotFound(f"run `{run_id}` does not exist")
    if guard is not None:
        guard.check(namespace, what=f"run `{run_id}`")


def _load(session: Session, run_id: str, guard: Guard | None) -> run_store.Loaded:
    """The whole run, read once, then checked against the guard."""
    loaded = run_store.load(session, run_id)
    if guard is not None:
        guard.check(loaded.run.namespace, what=f"run `{run_id}`")
    return loaded

LISTING = "runs"


def register(source: str, *, file: str = "<api>", actor: str = "api",
             origin: str = audit.LOCAL_ORIGIN,
             guard: Guard | None = None) -> tuple[Flow, FlowRevisionPublic]:
    """Validate and store a flow's source; an unchanged source keeps its revision."""
    flow = parse_flow(source, file)
    if problems := people.unknown_roles(flow, file):
        raise SpecError(problems)
    if guard is not None:
        guard.check(flow.namespace, what=f"namespace `{flow.namespace}`")
    refused, decisions = policy_points.registration_problems(flow, source, file, actor=actor)
    if refused:
        with session_scope() as session:  # refusals are decisions too: audited
            policy_points.record(session, decisions, target=f"flows/{flow.ref}", origin=origin)
        raise SpecError(refused)
    with session_scope() as session:
        policy_points.record(session, decisions, target=f"flows/{flow.ref}", origin=origin)
        record_flow(session, flow)  # its nodes' produces:/consumes: as declared lineage
        revision = flow_store.register_flow(session, flow=flow, source=source,
                                            author=actor)
        audit.record(session, actor=actor, action=audit.Action.FLOW_REGISTERED,
                     target=f"flows/{flow.ref}", origin=origin,
                     after={"revision": revision.revision, "digest": revision.digest,
                            "file": file})
        return flow, FlowRevisionPublic.of(revision)


def start_run(*, namespace: str, flow_id: str, inputs: dict[str, Any], dispatcher: Dispatcher,
              revision: int | None = None, trigger: dict[str, Any] | None = None,
              actor: str = "api", origin: str = audit.LOCAL_ORIGIN,
              inputs_are_strings: bool = False, guard: Guard | None = None) -> str:
    return start_once(namespace=namespace, flow_id=flow_id, inputs=inputs,
                      dispatcher=dispatcher, revision=revision, trigger=trigger, actor=actor,
                      origin=origin, inputs_are_strings=inputs_are_strings, guard=guard)[0]


def start_once(*, namespace: str, flow_id: str, inputs: dict[str, Any], dispatcher: Dispatcher,
               revision: int | None = None, trigger: dict[str, Any] | None = None,
               actor: str = "api", origin: str = audit.LOCAL_ORIGIN,
               inputs_are_strings: bool = False, guard: Guard | None = None,
               idempotency_key: str | None = None) -> tuple[str, bool]:
    """Start a run; (its id, True). With an ``idempotency_key`` this caller used before for
    this flow: (the run it started then, False), nothing new; Conflict if the inputs
    differ. The run is committed before it is sent: a broker that is down delays it (the
    outbox sends it again), it never loses or doubles it.

    The run's first pass is planned in the start's transaction (`plan_started`): one
    transaction and no broker hop before its first nodes are queued. Should that pass fail
    (a race lost on a shared limit, a fault), the start is made again without it and a
    worker plans the run, as it plans every later pass."""
    if guard is not None:  # before the look-up: an invisible flow is as unknown as a missing one
        guard.check(namespace, what=f"flow `{namespace}/{flow_id}`")
    request = _StartRequest(namespace, flow_id, inputs, revision, trigger, actor, origin,
                            inputs_are_strings, idempotency_key)
    try:
        run_id, created, work = _start(request, plan_now=True)
    except _FirstPassFailed:
        run_id, created, work = _start(request, plan_now=False)
    for item in work:
        dispatcher.send(item)
    return run_id, created


@dataclass(frozen=True)
class _StartRequest:
    namespace: str
    flow_id: str
    inputs: dict[str, Any]
    revision: int | None
    trigger: dict[str, Any] | None
    actor: str
    origin: str
    inputs_are_strings: bool
    idempotency_key: str | None


class _FirstPassFailed(Exception):
    """The first pass raised inside the start's transaction, which is rolled back."""


def _start(req: _StartRequest, *, plan_now: bool) -> tuple[str, bool, list[Work]]:
    """One try at a start: (the run's id, whether it is new, the work to send)."""
    refused: PolicyRefused | None = None
    with session_scope() as session:
        rev = flow_store.get_revision(session, namespace=req.namespace, flow_id=req.flow_id,
                                      revision=req.revision)
        flow = flow_store.load_flow_of(rev)
        checked = check_inputs(flow.inputs, req.inputs, from_strings=req.inputs_are_strings)
        trigger = req.trigger or {"type": TriggerType.MANUAL, "by": req.actor}
        key = None if req.idempotency_key is None else idempotency.request_key(
            flow.ref, actor=req.actor, key=req.idempotency_key)
        if key is not None and not idempotency.claim(session, key=key,
                                                     namespace=flow.namespace, flow_id=flow.id):
            earlier = idempotency.earlier_run(session, key)
            if run_store.inputs_of(session, earlier) != checked:
                raise Conflict("this Idempotency-Key started a run with other inputs; use a "
                               "new key for a new run")
            return earlier, False, []
        try:
            decisions = policy_points.check(flow, Point.START, actor=req.actor,
                                            run={"inputs": checked, "trigger": trigger})
        except PolicyRefused as exc:
            refused = exc
            session.rollback()  # the key is not spent on a refused start
        else:
            with batched_events(session):  # the run's first event joins its first pass's
                if plan_now:
                    loaded = run_store.create_run_to_plan(
                        session, revision=rev, inputs=checked, trigger=trigger,
                        actor=req.actor, origin=req.origin)
                    run_id = loaded.run.id
                    work = _first_pass(session, loaded)
                else:
                    run_id = run_store.create_run(session, revision=rev, inputs=checked,
                                                  trigger=trigger, actor=req.actor,
                                                  origin=req.origin)
                    work = [Work(TaskKind.ADVANCE, run_id)]
            if key is not None:
                idempotency.bind(session, key=key, run_id=run_id)
            policy_points.record(session, decisions, target=f"runs/{run_id}",
                                 origin=req.origin)
    if refused is not None:  # no run; the refusal is a decision too: audited
        with session_scope() as session:
            policy_points.record(session, refused.decisions, target=f"flows/{flow.ref}",
                                 origin=req.origin)
        raise refused
    return run_id, True, work


def _first_pass(session: Session, loaded: run_store.Loaded) -> list[Work]:
    run_id = loaded.run.id
    try:
        return plan_started(session, loaded)
    except LostRace as exc:   # another run took a shared row first: a worker plans it
        log.info("the first pass of run %s lost a race (%s); a worker plans it", run_id, exc)
        raise _FirstPassFailed from exc
    except Exception as exc:  # the start itself must not fail for its planning
        log.exception("the first pass of run %s failed; a worker plans it", run_id)
        raise _FirstPassFailed from exc


def get_run(run_id: str, *, guard: Guard | None = None) -> RunDetail:
    with session_scope() as session:
        detail = RunDetail.of_loaded(_load(session, run_id, guard),
                                     deadline_rows.of_run(session, run_id))
    if guard is not None and not guard.allows(Permission.OUTPUTS_READ, detail.namespace):
        detail = detail.without_outputs()
    return detail


def run_trace(run_id: str, *, guard: Guard | None = None) -> RunTrace:
    """The trace of a run across systems, read in one transaction."""
    with session_scope() as session:
        _guard(session, run_id, guard)
        return build_trace(session, run_id)


def run_events(run_id: str, *, guard: Guard | None = None) -> list[EventPublic]:
    with session_scope() as session:
        _guard(session, run_id, guard)  # 404 for an unknown run
        return [EventPublic.of(e) for e in run_store.events_of(session, run_id)]


def list_runs(*, filters: run_store.RunFilter, limit: int = 50,
              cursor: str | None = None) -> RunPage:
    before = cursors.decode(LISTING, cursor, datetime, str) if cursor else None
    with session_scope() as session:
        rows = run_store.list_runs(session, filters=filters, limit=limit + 1, before=before)
    page = [RunSummary.of(r) for r in rows[:limit]]
    next_cursor = cursors.encode(LISTING, rows[limit - 1].created_at, rows[limit - 1].id) \
        if len(rows) > limit else None
    return RunPage(runs=page, next_cursor=next_cursor)


def cancel_run(run_id: str, *, dispatcher: Dispatcher, actor: str = "api",
               origin: str = audit.LOCAL_ORIGIN, guard: Guard | None = None) -> None:
    with session_scope() as session:
        _guard(session, run_id, guard)
        run_store.request_cancel(session, run_id=run_id, actor=actor, origin=origin)
    dispatcher.send(Work(TaskKind.ADVANCE, run_id))


def retry_run(run_id: str, *, dispatcher: Dispatcher, actor: str = "api",
              origin: str = audit.LOCAL_ORIGIN, guard: Guard | None = None) -> list[str]:
    with session_scope() as session:
        _guard(session, run_id, guard)
        reopened = run_store.request_retry(session, run_id=run_id, actor=actor, origin=origin)
    dispatcher.send(Work(TaskKind.ADVANCE, run_id))
    return reopened


def node_logs(run_id: str, node_id: str, *, attempt: int | None = None,
              cursor: str | None = None, guard: Guard | None = None) -> LogPublic:
    with session_scope() as session:
        loaded = _load(session, run_id, guard)
    if node_id not in loaded.nodes:
        raise NotFound(f"run `{run_id}` has no node `{node_id}` "
                       f"(nodes: {', '.join(loaded.nodes)})")
    attempts = loaded.attempts.get(node_id, [])
    chosen = [a for a in attempts if attempt is None or a.number == attempt]
    if not chosen:
        raise NotFound(f"node `{node_id}` of run `{run_id}` has no attempt"
                       + (f" {attempt}" if attempt is not None else " yet"))
    a = chosen[-1]
    if a.handle is None:
        return LogPublic(run_id=run_id, node_id=node_id, attempt=a.number,
                         text=a.log_excerpt or a.error or "", cursor=None, truncated=False)
    try:
        chunk = default_registry().get(a.uses).logs(Handle(**a.handle), cursor=cursor)
    except Rejected as exc:  # a cursor the adapter did not issue: the request's fault (400)
        raise ValueError(str(exc)) from None
    # A foreign system's log may print what the node was given: its secrets are masked.
    mask = masker_for(loaded.flow.nodes[node_id].with_)
    return LogPublic(run_id=run_id, node_id=node_id, attempt=a.number,
                     text=mask.text(chunk.text), cursor=chunk.cursor, truncated=chunk.truncated)
