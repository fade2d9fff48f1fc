"""Nodes settled in the planning transaction, without an EXECUTE round trip.

An adapter that declares `settles_in_submit` (its submit finishes at once, calls nothing
outside the process and may be repeated: `noop`) is called by the controller right where
it would queue the attempt's EXECUTE work, and the outcome is recorded in the same
transaction; the controller then plans the run again, still in that transaction. Per such
node that saves an outbox row, a message, the executor's read and the transaction that
records the outcome.

Nothing a node passes through is skipped: the controller gets here after the policy gate
and the concurrency admission, the planner released the node from any approval gate, the
state events are those of the long way (node pending → queued, attempt queued → its
outcome, node queued → its outcome from the next pass), and datasets and lineage are
recorded as `executor.finish` records them. A node whose `with:` names a secret goes the
long way: secrets are resolved by the worker that submits, and masked in what comes back.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.contract import JobSpec, Observation, RetryMode
from interlock.adapters.registry import UnknownAdapter, default_registry
from interlock.dispatch import datasets
from interlock.dispatch.tracing import traceparent
from interlock.engine.decisions import Submit
from interlock.lineage import emitted
from interlock.spec.expressions import secret_paths
from interlock.states import NodeState
from interlock.store.outbox import Work
from interlock.store.runs import Loaded
from interlock.store.tables import Attempt, TaskKind
from interlock.store.transitions import insert_settled_attempt, storable

ACTOR = "executor"  # who records an attempt's outcome, here as on the long way
FIRST_TRY = 1  # submit_tries of an attempt settled at its first submit


def observe(loaded: Loaded, submit: Submit, key: str) -> Observation | None:
    """What the node's adapter says at once, if it settles in submit; None when the node
    must go the long way (EXECUTE): not such an adapter, a secret to resolve, a native
    retry, or anything that goes wrong (the executor meets it again and says so)."""
    node = loaded.flow.nodes[submit.node_id]
    registry = default_registry()
    try:
        if not registry.adapter_class(node.uses).settles_in_submit:
            return None
    except UnknownAdapter:
        return None
    if node.retry.mode is not RetryMode.NEW or secret_paths(node.with_):
        return None
    run = loaded.run
    job = JobSpec(run_id=run.id, node_id=submit.node_id, attempt=submit.attempt,
                  params=submit.params, traceparent=traceparent(run.trace_id, key),
                  timeout_s=node.timeout, flow=f"{run.namespace}/{run.flow_id}")
    try:
        adapter = registry.get(node.uses)
        adapter.params_model.model_validate(job.params)
        result = adapter.submit(job, key=key)
    except Exception:  # an adapter bug: the long way reports it
        return None
    if not isinstance(result, Observation) or not result.finished:
        return None
    return result


def record(session: Session, loaded: Loaded, observed: Observation,
           **values: Any) -> tuple[Attempt, list[Work]]:
    """Insert the attempt (``values``: its columns as queued) with ``observed``'s outcome,
    as `executor.finish` records one. Returns it as written (an object the session does
    not hold: what the next pass and the hooks read; its id is None when no hook needed
    it) and the work owed after the commit (dataset reports)."""
    seen = {"handle": asdict(observed.handle), "external_id": observed.handle.external_id,
            "outputs": observed.outputs, "error": observed.error,
            "log_excerpt": observed.log_excerpt,
            "remote_status": observed.remote_status[:200], "finished_at": clock.now(),
            "submit_tries": FIRST_TRY}
    row = {**values, **seen}
    attempt = Attempt(**storable(row), state=observed.state.value)
    flow = loaded.flow
    produces = flow.nodes[attempt.node_id].produces
    # Its id is asked for only by its dataset reports and lineage; without them the
    # attempt is inserted with the pass's other writes (`coalesced_writes`), id unread.
    hooked = observed.state is NodeState.SUCCEEDED and (
        bool(produces) or not emitted.nothing_to_say(attempt, flow))
    attempt.id = insert_settled_attempt(session, to=observed.state, actor=ACTOR,
                                        reason=observed.remote_status, deferrable=not hooked,
                                        **row)
    if not hooked:
        return attempt, []
    reported = datasets.schedule(session, attempt, produces)
    emitted.record_attempt(session, attempt, flow)
    return attempt, [Work(TaskKind.REPORT, attempt.run_id, attempt.id)] if reported else []
