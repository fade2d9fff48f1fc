"""An agent node's steps as child spans of its attempt (`docs/agents.md`): one span per
model request (`model`) and per tool call (`tool`, with its approval id), and under a tool
call that waited for people, the wait itself (`approval`, from the request to the decision).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.store.tables import AgentStep, ApprovalRequest, Attempt, StepKind
from interlock.trace.model import Span, SpanKind
from interlock.trace.spans import approval_span, attempt_span_id, seconds


def step_span_id(step: AgentStep) -> str:
    return f"step:{step.run_id}/{step.node_id}/{step.attempt}/{step.seq:04d}"


def agent_spans(session: Session, attempts: Sequence[Attempt], *,
                upstream: bool) -> list[Span]:
    """The steps of the agent attempts among ``attempts`` (only agent nodes have steps)."""
    runs = {a.run_id for a in attempts}
    if not runs:
        return []
    steps = list(session.scalars(select(AgentStep).where(AgentStep.run_id.in_(runs))
                                 .order_by(AgentStep.node_id, AgentStep.attempt,
                                           AgentStep.seq)))
    asked = {r.id: r for r in session.scalars(select(ApprovalRequest).where(
        ApprovalRequest.id.in_([s.approval_id for s in steps if s.approval_id])))}
    spans = [_step_span(s, upstream=upstream) for s in steps]
    spans += [_approval_span(s, asked[s.approval_id], upstream=upstream)
              for s in steps if s.approval_id in asked]
    return spans


def _step_span(step: AgentStep, *, upstream: bool) -> Span:
    model = step.kind == StepKind.MODEL.value
    label = f"model {step.model}" if model else f"tool {step.tool}"
    detail = (f"{step.input_tokens} in / {step.output_tokens} out tokens, "
              f"{step.finish_reason or '-'}") if model else step.ref
    return Span(id=step_span_id(step),
                parent_id=attempt_span_id(step.run_id, step.node_id, step.attempt),
                kind=SpanKind.MODEL if model else SpanKind.TOOL, upstream=upstream,
                label=label, run_id=step.run_id, node_id=step.node_id, attempt=step.attempt,
                external_id=step.idempotency_key, state=step.state, remote_status=detail,
                started_at=step.started_at, finished_at=step.ended_at,
                duration_s=seconds(step.started_at, step.ended_at), error=step.error,
                approval_id=step.approval_id)


def _approval_span(step: AgentStep, row: ApprovalRequest, *, upstream: bool) -> Span:
    return approval_span(row, parent_id=step_span_id(step), label=f"approval of {step.tool}",
                         run_id=step.run_id, node_id=step.node_id, attempt=step.attempt,
                         upstream=upstream)
