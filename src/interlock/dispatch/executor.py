"""Attempt handlers: submit to the adapter, observe, cancel. Each is idempotent.

A handler may run twice for the same work (a resend after a lease ran out, a broker
redelivery): the attempt's compare-and-set state and the adapter's idempotency key
make the second run a no-op, so nothing is submitted twice.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from interlock import clock, secrets
from interlock.adapters.contract import Adapter, Handle, JobSpec, Observation, RetryMode
from interlock.adapters.masking import Masker
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.dispatch import datasets
from interlock.dispatch.controller import advance
from interlock.dispatch.inline import ACTOR
from interlock.dispatch.secrecy import masked, node_masker
from interlock.dispatch.tracing import traceparent
from interlock.errors import Rejected, Transient
from interlock.lineage import emitted
from interlock.spec.models import Flow
from interlock.states import NodeState
from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.outbox import Dispatcher
from interlock.store.runs import lock_run
from interlock.store.tables import ATTEMPTS, Attempt, Run, TaskKind, rowcount
from interlock.store.transitions import set_attempt_state, set_node_state

log = logging.getLogger(__name__)
WORKER = f"{socket.gethostname()}:{os.getpid()}"
SUBMIT_BACKOFF = (1.0, 60.0)  # transient submit failures: first wait, cap
POLL_TICK_S = 1.0  # polls are due on whole ticks, so in-flight attempts are polled together
# States an attempt can be put in by the planner while its submit is still in flight.
CLOSED_BEFORE_SUBMIT = frozenset({NodeState.CANCELLED, NodeState.TIMED_OUT})


def execute(attempt_id: int, *, dispatcher: Dispatcher,
            registry: AdapterRegistry | None = None) -> None:
    """Submit an attempt to its adapter and record the handle (or the outcome)."""
    registry = registry or default_registry()
    with session_scope() as session:
        # The attempt and its run in one statement.
        found = session.execute(select(Attempt, Run).join(Run, Run.id == Attempt.run_id)
                                .where(Attempt.id == attempt_id)).first()
        if found is None:
            return
        attempt, run = found
        if NodeState(attempt.state) is not NodeState.QUEUED:  # a twin got here first
            outbox.complete(session, kind=TaskKind.EXECUTE, run_id=attempt.run_id,
                            attempt_id=attempt_id)
            return
        job, node_with = _job_of(session, attempt, run)
    tries = attempt.submit_tries + 1  # recorded with the outcome of this submit
    adapter: Adapter | None = None  # stays None when no adapter has this kind
    mask = Masker(())  # every text that comes back passes through it
    try:
        resolved = secrets.resolve(node_with, job.params)
        mask = resolved.masker
        job = replace(job, params=resolved.params, secrets=resolved.values)
        adapter = registry.get(attempt.uses)
        adapter.params_model.model_validate(job.params)
        with outbox.carried_by(dispatcher):
            result = adapter.submit(job, key=attempt.key)
    except Transient as exc:
        _submit_later(attempt, tries, mask.text(str(exc)), dispatcher)
        return
    except (Rejected, UnknownAdapter) as exc:
        result = _failed(attempt, mask.text(str(exc)))
    except ValidationError as exc:
        result = _failed(attempt, mask.text(f"invalid `with:` for `uses: {attempt.uses}`: {exc}"))
    except Exception as exc:  # an adapter bug must fail the attempt, not loop forever
        # Not log.exception: a traceback's locals and message could carry a secret.
        log.error("adapter %s failed to submit attempt %s: %s", attempt.uses, attempt.key,
                  mask.text(f"{type(exc).__name__}: {exc}"))
        result = _failed(attempt, mask.text(f"adapter error: {type(exc).__name__}: {exc}"))
    _record_submit(attempt, masked(result, mask), adapter, dispatcher, tries)


def _job_of(session: Session, attempt: Attempt, run: Run) -> tuple[JobSpec, dict[str, Any]]:
    """The attempt's job (secret references unresolved) and the node's `with:` as written."""
    node = flow_of_run(session, run).nodes[attempt.node_id]
    previous = None
    if node.retry.mode is not RetryMode.NEW:  # the adapter retries the last job natively
        handle = session.scalar(
            select(Attempt.handle).where(Attempt.run_id == attempt.run_id,
                                         Attempt.node_id == attempt.node_id,
                                         Attempt.number < attempt.number,
                                         Attempt.handle.is_not(None))
            .order_by(Attempt.number.desc()).limit(1))
        previous = Handle(**handle) if handle else None
    job = JobSpec(run_id=attempt.run_id, node_id=attempt.node_id, attempt=attempt.number,
                  params=attempt.params, traceparent=traceparent(run.trace_id, attempt.key),
                  timeout_s=node.timeout, flow=f"{run.namespace}/{run.flow_id}",
                  retry_mode=node.retry.mode, previous=previous)
    return job, node.with_


def _failed(attempt: Attempt, error: str) -> Observation:
    return Observation(handle=Handle(kind=attempt.uses, external_id=attempt.key),
                       state=NodeState.FAILED, remote_status="rejected", error=error)


def _submit_later(attempt: Attempt, tries: int, error: str, dispatcher: Dispatcher) -> None:
    delay = min(SUBMIT_BACKOFF[0] * 2 ** (tries - 1), SUBMIT_BACKOFF[1])
    with session_scope() as session:
        session.execute(update(ATTEMPTS).where(Attempt.id == attempt.id)
                        .values(remote_status=f"submit failed (try {tries}): {error}"[:200],
                                submit_tries=tries))
        outbox.complete(session, kind=TaskKind.EXECUTE, run_id=attempt.run_id,
                        attempt_id=attempt.id)
        outbox.add(session, outbox.Work(TaskKind.EXECUTE, attempt.run_id, attempt.id),
                   delay=delay)
    dispatcher.send(outbox.Work(TaskKind.EXECUTE, attempt.run_id, attempt.id), countdown=delay)


def _record_submit(attempt: Attempt, result: Handle | Observation, adapter: Adapter | None,
                   dispatcher: Dispatcher, tries: int) -> None:
    handle = result.handle if isinstance(result, Observation) else result
    if isinstance(result, Observation) and result.finished:
        finish(attempt, result, expected=NodeState.QUEUED, dispatcher=dispatcher,
               submit_tries=tries)
        return
    interval = (adapter or Adapter).poll_interval[0]
    with session_scope() as session:
        lock_run(session, attempt.run_id)
        at = clock.now()
        moved = set_attempt_state(session, attempt=attempt, expected=NodeState.QUEUED,
                                  to=NodeState.RUNNING, actor=ACTOR, reason="submitted",
                                  handle=asdict(handle), external_id=handle.external_id,
                                  submitted_at=at,
                                  remote_status=getattr(result, "remote_status", "submitted"),
                                  next_poll_at=poll_tick(at, interval),
                                  poll_interval=interval, worker=WORKER, submit_tries=tries)
        if moved:
            set_node_state(session, run_id=attempt.run_id, node_id=attempt.node_id,
                           expected=NodeState.QUEUED, to=NodeState.RUNNING, actor=ACTOR,
                           reason=f"attempt {attempt.number} submitted")
        outbox.complete(session, kind=TaskKind.EXECUTE, run_id=attempt.run_id,
                        attempt_id=attempt.id)
        # Lost the race: either a twin delivery recorded the same job (nothing to do), or the
        # attempt was cancelled or timed out while we were submitting.
        closed = not moved and (session.scalar(select(Attempt.state)
                                               .where(Attempt.id == attempt.id)) or "") \
            in CLOSED_BEFORE_SUBMIT
    if closed and adapter is not None:
        adapter.cancel(handle)  # stop what we just started


def finish(attempt: Attempt, obs: Observation, *, expected: NodeState, dispatcher: Dispatcher,
           **values: object) -> None:
    """Record a finished observation and plan the run in the same transaction."""

    reported = False

    def record(session: Session) -> None:
        nonlocal reported
        flow = _flow_of(session, attempt)  # cached per revision: masking and datasets share it
        seen = masked(obs, node_masker(flow, attempt.node_id))
        moved = set_attempt_state(
            session, attempt=attempt, expected=expected, to=seen.state, actor=ACTOR,
            reason=seen.remote_status, handle=asdict(seen.handle),
            external_id=seen.handle.external_id, outputs=seen.outputs,
            error=seen.error, log_excerpt=seen.log_excerpt,
            remote_status=seen.remote_status[:200],
            finished_at=clock.now(), next_poll_at=None, **values)
        if moved and seen.state is NodeState.SUCCEEDED:
            reported = datasets.schedule(session, attempt, flow.nodes[attempt.node_id].produces)
            emitted.record_attempt(session, attempt, flow)  # after the state: it re-reads it

    advance(attempt.run_id, dispatcher=dispatcher, first=record,
            done=outbox.Work(TaskKind.EXECUTE, attempt.run_id, attempt.id))
    if reported:
        datasets.send(dispatcher, attempt)


def _flow_of(session: Session, attempt: Attempt) -> Flow:
    run = session.get(Run, attempt.run_id)
    assert run is not None
    return flow_of_run(session, run)


def poll(attempt_ids: Sequence[int], *, dispatcher: Dispatcher,
         registry: AdapterRegistry | None = None) -> None:
    """Observe in-flight attempts, batched by adapter: one `poll` call per kind."""
    registry = registry or default_registry()
    claimed = claim_polls(attempt_ids, registry)
    by_kind: dict[str, list[Attempt]] = {}
    for attempt in claimed:
        by_kind.setdefault(attempt.uses, []).append(attempt)
    for kind, attempts in by_kind.items():
        # Matched on the job, not the key: a native retry polls the same job again.
        by_job = {a.handle["external_id"]: a for a in attempts if a.handle}
        with outbox.carried_by(dispatcher):
            observed = _observe(kind, list(by_job.values()), registry)
        for obs in observed:
            polled = by_job.get(obs.handle.external_id)
            if polled is not None and obs.finished:
                finish(polled, obs, expected=NodeState.RUNNING, dispatcher=dispatcher)


def _observe(kind: str, attempts: list[Attempt], registry: AdapterRegistry) -> list[Observation]:
    """One `poll` for the batch. `Transient`: nothing observed, polled again next tick.
    `Rejected` or an adapter bug: each attempt is polled alone, so one handle that breaks
    the batch fails only its own attempt (with the message, or the exception named)."""
    if not attempts:
        return []
    try:
        return registry.get(kind).poll([Handle(**a.handle) for a in attempts])
    except Transient as exc:
        log.warning("polling %s attempts failed, will retry: %s", kind, exc)
        return []
    except (Rejected, UnknownAdapter) as exc:
        error = str(exc)
    except Exception as exc:  # an adapter bug must fail the attempt, not poll it forever
        log.exception("adapter %s failed to poll %d attempt(s)", kind, len(attempts))
        error = f"adapter error: {type(exc).__name__}: {exc}"
    if len(attempts) > 1:
        return [obs for a in attempts for obs in _observe(kind, [a], registry)]
    return [_poll_failed(attempts[0], error)]


def _poll_failed(attempt: Attempt, error: str) -> Observation:
    assert attempt.handle is not None  # a running attempt has its handle
    return Observation(handle=Handle(**attempt.handle), state=NodeState.FAILED,
                       remote_status="poll failed", error=error)


def claim_polls(attempt_ids: Sequence[int], registry: AdapterRegistry) -> list[Attempt]:
    """Take the due attempts among ``attempt_ids`` and push their next poll back.

    The compare-and-set on `next_poll_at` means two pollers never poll the same attempt
    for the same tick; the interval doubles up to the adapter's maximum.
    """
    now = clock.now()
    taken: list[Attempt] = []
    with session_scope() as session:
        due = session.scalars(select(Attempt).where(
            Attempt.id.in_(list(attempt_ids)), Attempt.state == NodeState.RUNNING.value,
            Attempt.next_poll_at <= now + timedelta(milliseconds=50))).all()
        for attempt in due:
            interval = _next_interval(attempt, registry)
            result = session.execute(
                update(ATTEMPTS).where(Attempt.id == attempt.id,
                                      Attempt.next_poll_at == attempt.next_poll_at)
                .values(next_poll_at=poll_tick(now, interval), poll_interval=interval))
            if rowcount(result) == 1:
                taken.append(attempt)
    return taken


def poll_tick(now: datetime, interval: float) -> datetime:
    """When to poll next: ``interval`` from now, rounded up to a whole tick. Attempts
    that fall due in the same tick are polled together, so an adapter sees one batch (one
    request per system) per tick however many attempts are in flight."""
    due = now.timestamp() + interval
    return datetime.fromtimestamp(math.ceil(due / POLL_TICK_S) * POLL_TICK_S, tz=UTC)


def _next_interval(attempt: Attempt, registry: AdapterRegistry) -> float:
    try:
        low, high = registry.adapter_class(attempt.uses).poll_interval
    except UnknownAdapter:
        low, high = Adapter.poll_interval
    return min(max((attempt.poll_interval or low) * 2, low), high)


def cancel(attempt_id: int, *, registry: AdapterRegistry | None = None) -> None:
    registry = registry or default_registry()
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
    if attempt is None or attempt.handle is None:
        return
    registry.get(attempt.uses).cancel(Handle(**attempt.handle))
    with session_scope() as session:
        outbox.complete(session, kind=TaskKind.CANCEL, run_id=attempt.run_id,
                        attempt_id=attempt_id)
