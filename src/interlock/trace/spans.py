"""Store rows as timeline spans: a run, an attempt, a foreign run, people deciding."""

from __future__ import annotations

from datetime import datetime

from interlock.states import ApprovalState, NodeState, RunState
from interlock.store.tables import ApprovalRequest, Attempt, ExternalRun, Run
from interlock.trace.links import attempt_link, foreign_run_link
from interlock.trace.model import Span, SpanKind

REFUSED = frozenset({ApprovalState.REJECTED.value, ApprovalState.TIMED_OUT.value})


def run_span_id(run_id: str) -> str:
    return f"run:{run_id}"


def attempt_span_id(run_id: str, node_id: str, number: int) -> str:
    return f"attempt:{run_id}/{node_id}/{number}"


def foreign_span_id(system: str, job_id: str, external_id: str) -> str:
    return f"foreign:{system}/{job_id}/{external_id}"


def seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def attempt_system(a: Attempt) -> str | None:
    """The registered system an attempt ran on: its handle's, else its `with.system`."""
    named = (a.handle or {}).get("system") or a.params.get("system")
    return named if isinstance(named, str) and named else None


def _job_of(a: Attempt) -> str | None:
    """The foreign job an attempt ran: Airflow's DAG (in the handle), Dagster's job..."""
    data = (a.handle or {}).get("data") or {}
    named = data.get("dag_id") or a.params.get("dag_id") or a.params.get("job")
    return named if isinstance(named, str) and named else None


def run_span(run: Run, *, parent_id: str | None, upstream: bool) -> Span:
    return Span(id=run_span_id(run.id), parent_id=parent_id, kind=SpanKind.RUN,
                upstream=upstream, label=f"{run.namespace}/{run.flow_id}", run_id=run.id,
                job_id=f"{run.namespace}/{run.flow_id}", external_id=run.id, state=run.state,
                started_at=run.created_at, finished_at=run.finished_at,
                duration_s=seconds(run.created_at, run.finished_at),
                error=run.reason if run.state == RunState.FAILED.value else None)


def attempt_span(a: Attempt, *, upstream: bool) -> Span:
    start = a.submitted_at or a.created_at
    return Span(id=attempt_span_id(a.run_id, a.node_id, a.number),
                parent_id=run_span_id(a.run_id), kind=SpanKind.ATTEMPT, upstream=upstream,
                label=f"{a.node_id} #{a.number}", run_id=a.run_id, node_id=a.node_id,
                attempt=a.number, uses=a.uses, system=attempt_system(a),
                job_id=_job_of(a),
                external_id=a.external_id, state=a.state, remote_status=a.remote_status,
                queued_at=a.created_at, submitted_at=a.submitted_at, started_at=start,
                finished_at=a.finished_at, duration_s=seconds(start, a.finished_at),
                error=a.error, log_excerpt=a.log_excerpt,
                deep_link=attempt_link(a.uses, a.handle, a.error))


def foreign_span(row: ExternalRun, *, parent_id: str | None, run_id: str | None,
                 upstream: bool) -> Span:
    failed = row.state in (NodeState.FAILED.value, NodeState.TIMED_OUT.value)
    task = row.details.get("task_id") if failed else None
    error = row.details.get("error")
    return Span(id=foreign_span_id(row.system, row.job_id, row.external_id),
                parent_id=parent_id, kind=SpanKind.FOREIGN_RUN, upstream=upstream,
                label=f"{row.system} {row.job_id}", run_id=run_id,
                node_id=task if isinstance(task, str) else None,
                uses=row.system.split("/", 1)[0], system=row.system, job_id=row.job_id,
                external_id=row.external_id, state=row.state, remote_status=row.remote_status,
                started_at=row.started_at, finished_at=row.ended_at,
                duration_s=seconds(row.started_at, row.ended_at),
                error=error if isinstance(error, str) else None,
                deep_link=foreign_run_link(row.system, row.job_id, row.external_id,
                                           task_id=task if isinstance(task, str) else None))


def unrecorded_span(trigger: dict[str, object], *, upstream: bool) -> Span:
    """A foreign run known only from the trigger it fired (its row is gone)."""
    system, job, ext = (str(trigger.get(k, "")) for k in ("system", "job_id", "external_id"))
    return Span(id=foreign_span_id(system, job, ext), parent_id=None,
                kind=SpanKind.FOREIGN_RUN, upstream=upstream, label=f"{system} {job}",
                run_id=None, uses=system.split("/", 1)[0], system=system, job_id=job,
                external_id=ext, state=str(trigger.get("state", "")),
                remote_status=str(trigger.get("remote_status") or "") or None,
                started_at=None, finished_at=None, duration_s=None,
                deep_link=foreign_run_link(system, job, ext))


def approval_span(row: ApprovalRequest, *, parent_id: str, label: str, run_id: str,
                  node_id: str | None, attempt: int | None = None, upstream: bool) -> Span:
    """People deciding on ``row``, from the request to its decision: a node's gate (under
    its run) or an agent's tool call (under its tool span)."""
    who = ", ".join(row.decided_by)
    return Span(id=f"approval:{row.id}", parent_id=parent_id, kind=SpanKind.APPROVAL,
                upstream=upstream, label=label, run_id=run_id, node_id=node_id,
                attempt=attempt, external_id=row.id, state=row.state,
                remote_status=f"by {who}" if who else None,
                started_at=row.created_at, finished_at=row.decided_at,
                duration_s=seconds(row.created_at, row.decided_at),
                error=row.reason if row.state in REFUSED else None, approval_id=row.id)
