"""A run's trace: its spans in time order, its upstream context and its root cause."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from interlock.states import RUN_TERMINAL, RunState
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.views import RunSummary
from interlock.trace.cause import root_cause
from interlock.trace.collect import Collector
from interlock.trace.model import RunTrace, Span

_NEVER = datetime.max.replace(tzinfo=UTC)


def trace_run(run_id: str) -> RunTrace:
    """The trace of a run (NotFound if there is no such run), read in one transaction."""
    with session_scope() as session:
        return build_trace(session, run_id)


def build_trace(session: Session, run_id: str) -> RunTrace:
    loaded = run_store.load(session, run_id)
    collector = Collector(session)
    parent = collector.add_upstream(loaded.run)
    collector.add_run(loaded, parent_id=parent, upstream=False)
    spans = sorted(collector.spans.values(), key=_start)
    done = RunState(loaded.run.state) in RUN_TERMINAL
    ends = [s.finished_at for s in spans if s.finished_at is not None]
    return RunTrace(run=RunSummary.of(loaded.run),
                    started_at=min(s.started_at for s in spans if s.started_at is not None),
                    finished_at=max(ends) if done and ends else None, spans=spans,
                    nodes=collector.nodes,
                    root_cause=root_cause(run_id, collector.loaded, collector.spans),
                    notes=collector.notes)


def _start(span: Span) -> datetime:
    """Where a span sits on the timeline; one never started sorts by its end, else last."""
    return span.started_at or span.finished_at or _NEVER
