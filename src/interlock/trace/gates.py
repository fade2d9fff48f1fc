"""A node's gate waiting for people (`approval:`) as a span of the run: from the request
to its decision. An agent's tool-call request is not one of these: it is a child of its
tool span (`trace.agent`)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.store.approvals import TOOL_CALL
from interlock.store.tables import ApprovalRequest
from interlock.trace.model import Span
from interlock.trace.spans import approval_span, run_span_id

LABEL = "approval wait {node}"  # also the exported span's name (`telemetry.export`)


def gate_spans(session: Session, run_ids: Collection[str], *, upstream: bool) -> list[Span]:
    if not run_ids:
        return []
    rows = session.scalars(select(ApprovalRequest).where(
        ApprovalRequest.run_id.in_(run_ids), ApprovalRequest.node_id.is_not(None))
        .order_by(ApprovalRequest.created_at))
    return [approval_span(r, parent_id=run_span_id(r.run_id), label=LABEL.format(node=r.node_id),
                          run_id=r.run_id, node_id=r.node_id, upstream=upstream)
            for r in rows if r.run_id is not None and TOOL_CALL not in (r.details or {})]
