"""A finished run's trace as OpenTelemetry spans, sent by the SDK's OTLP exporter.

The spans are the trace Interlock already builds (`interlock.trace`): the run, each node
attempt, the foreign runs inside them, approval waits and an agent's steps, with their
real start and end times (a run's spans are made when it ends, by whichever worker ends
it, from the store, so a crash loses nothing: the EXPORT outbox row is sent again).

Identity is what Interlock already propagates: the trace id is the run's (in Airflow
conf, Dagster tags, `TRACEPARENT`), and an attempt's span id is the one its foreign job
was given as parent (`dispatch.tracing.traceparent`), so the foreign system's own spans
hang under the right attempt. Other spans get ids derived from their trace span id, so
sending a run twice sends the same spans (a collector keeps one of each).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from opentelemetry import trace as otel
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind as OtelKind
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import select

from interlock import __version__
from interlock.errors import Transient
from interlock.states import NODE_FAILED, RunState
from interlock.store.db import session_scope
from interlock.store.tables import Attempt
from interlock.trace.build import build_trace
from interlock.trace.model import RunTrace, Span, SpanKind

log = logging.getLogger(__name__)
SERVICE = "interlock"
SCOPE = "interlock.runs"
FAILED_RUN = frozenset({RunState.FAILED.value, RunState.CANCELLED.value})


def span_id_of(seed: str) -> int:
    """As `dispatch.tracing.traceparent` derives an attempt's span id from its key."""
    return int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16)


class _Given(IdGenerator):
    """Ids decided by the caller, one span at a time (the spans are made in one thread)."""

    def __init__(self, trace_id: int) -> None:
        self.trace_id, self.span_id = trace_id, 0

    def generate_span_id(self) -> int:
        return self.span_id

    def generate_trace_id(self) -> int:
        return self.trace_id


class _Keep(SpanProcessor):
    """Collects ended spans for one export call (no background thread, no batching: the
    caller knows whether the collector took them)."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def export_run(run_id: str, exporter: SpanExporter) -> int:
    """Send ``run_id``'s spans; the number sent. Raises Transient when the collector did
    not take them (the outbox sends them again)."""
    with session_scope() as session:
        trace = build_trace(session, run_id)
        keys = {(node_id, number): key for node_id, number, key in session.execute(
            select(Attempt.node_id, Attempt.number, Attempt.key)
            .where(Attempt.run_id == run_id))}
    spans = to_otel(trace, keys)
    if spans and exporter.export(spans) is not SpanExportResult.SUCCESS:
        raise Transient(f"the OpenTelemetry collector did not take the {len(spans)} spans "
                        f"of run {run_id}; sent again later")
    return len(spans)


def to_otel(trace: RunTrace, attempt_keys: dict[tuple[str, int], str]) -> list[ReadableSpan]:
    """The trace's own spans (not its upstream ones: their runs export them), parents
    before children."""
    run = trace.run
    ids = _Given(int(run.trace_id, 16))
    keep = _Keep()
    provider = TracerProvider(resource=Resource.create({
        "service.name": SERVICE, "service.version": __version__}), id_generator=ids)
    provider.add_span_processor(keep)
    tracer = provider.get_tracer(SCOPE, __version__)
    own = [s for s in trace.spans if not s.upstream]
    by_id = {s.id: s for s in own}
    otel_ids = {s.id: _otel_id(s, attempt_keys) for s in own}
    made: dict[str, Any] = {}
    for span in _parents_first(own, by_id):
        start = span.queued_at or span.started_at or span.finished_at
        if start is None:
            continue  # never started (a skipped node has no span anyway)
        parent = made.get(span.parent_id or "")
        context = otel.set_span_in_context(parent) if parent is not None else None
        ids.span_id = otel_ids[span.id]
        made[span.id] = item = tracer.start_span(
            _name(span), context=context, kind=_kind(span), start_time=_ns(start),
            attributes=_attributes(span, run.flow_id, run.namespace))
        if span.error:
            item.set_status(Status(StatusCode.ERROR, span.error[:500]))
        elif _failed(span):
            item.set_status(Status(StatusCode.ERROR, span.state))
        item.end(end_time=_ns(span.finished_at or start))
    return keep.spans


def _parents_first(spans: list[Span], by_id: dict[str, Span]) -> list[Span]:
    def depth(span: Span) -> int:
        seen, d = set(), 0
        while span.parent_id in by_id and span.parent_id not in seen:
            seen.add(span.parent_id)
            span, d = by_id[span.parent_id], d + 1
        return d
    return sorted(spans, key=depth)


def _otel_id(span: Span, attempt_keys: dict[tuple[str, int], str]) -> int:
    if span.kind is SpanKind.ATTEMPT and span.node_id and span.attempt is not None:
        key = attempt_keys.get((span.node_id, span.attempt))
        if key is not None:
            return span_id_of(key)  # the parent its foreign job was given
    return span_id_of(span.id)


def _name(span: Span) -> str:
    match span.kind:
        case SpanKind.RUN:
            return f"run {span.label}"
        case SpanKind.ATTEMPT:
            return f"node {span.node_id} attempt {span.attempt}"
        case SpanKind.FOREIGN_RUN:
            return f"{span.system} {span.job_id}"
        case _:
            return span.label


def _kind(span: Span) -> OtelKind:
    # An attempt hands work to another system (a client call); the rest is internal.
    return OtelKind.CLIENT if span.kind is SpanKind.ATTEMPT and span.system else \
        OtelKind.INTERNAL


def _failed(span: Span) -> bool:
    return span.state in FAILED_RUN or span.state in {s.value for s in NODE_FAILED}


def _attributes(span: Span, flow_id: str, namespace: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "interlock.span.kind": span.kind.value, "interlock.state": span.state,
        "interlock.run.id": span.run_id, "interlock.flow": f"{namespace}/{flow_id}",
        "interlock.node.id": span.node_id, "interlock.attempt": span.attempt,
        "interlock.adapter": span.uses, "interlock.system": span.system,
        "interlock.foreign.job": span.job_id, "interlock.foreign.run_id": span.external_id,
        "interlock.remote_status": span.remote_status, "interlock.approval.id": span.approval_id,
        "url.full": span.deep_link if span.deep_link and span.deep_link.startswith("http")
        else None,
        "error.type": span.state if span.error else None,
    }
    if span.submitted_at and span.started_at:
        values["interlock.queued_s"] = max(0.0, (span.started_at - span.submitted_at)
                                           .total_seconds())
    return {k: v for k, v in values.items() if v is not None}


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)
