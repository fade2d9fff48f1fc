"""A node's gate waiting for people (`approval:`) as a span of the run: from the request
to its decision. An agent's tool-call request is not one of these: it is a child of its
tool span (`trace.agent`)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.states import ApprovalState
from interlock.store.approvals import TOOL_CALL
from interlock.store.tables import ApprovalRequest
from interlock.trace.model import Span, SpanKind
from interlock.trace.spans import run_span_id, seconds

LABEL = "approval wait {node}"  # also the exported span's name (`telemetry.export`)
REFUSED = frozenset({ApprovalState.REJECTED.value, ApprovalState.TIMED_OUT.value})


def gate_spans(session: Session, run_ids: Collection[str], *, upstream: bool) -> list[Span]:
    if not run_ids:
        return []
    rows = session.scalars(select(ApprovalRequest).where(
        ApprovalRequest.run_id.in_(run_ids), ApprovalRequest.node_id.is_not(None))
        .order_by(ApprovalRequest.created_at))
    return [_span(r, r.run_id, upstream=upstream) for r in rows
            if r.run_id is not None and TOOL_CALL not in (r.details or {})]


def _span(row: ApprovalRequest, run_id: str, *, upstream: bool) -> Span:
    who = ", ".join(row.decided_by)
    return Span(id=f"approval:{row.id}", parent_id=run_span_id(run_id),
                kind=SpanKind.APPROVAL, upstream=upstream,
                label=LABEL.format(node=row.node_id), run_id=run_id, node_id=row.node_id,
                external_id=row.id, state=row.state,
                remote_status=f"by {who}" if who else None,
                started_at=row.created_at, finished_at=row.decided_at,
                duration_s=seconds(row.created_at, row.decided_at),
                error=row.reason if row.state in REFUSED else None,
                approval_id=row.id)
