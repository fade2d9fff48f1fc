"""Gather the spans of a run, of the foreign runs its attempts started, and of what
triggered it (upstream runs, across systems, up to MAX_DEPTH runs back)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.errors import NotFound
from interlock.states import NodeState
from interlock.store import runs as run_store
from interlock.store.runs import Loaded
from interlock.store.tables import Attempt, ExternalRun, Run
from interlock.trace.agent import agent_spans
from interlock.trace.gates import gate_spans
from interlock.trace.model import NodeTrace, Span
from interlock.trace.spans import (
    attempt_span,
    attempt_span_id,
    attempt_system,
    foreign_span,
    foreign_span_id,
    run_span,
    run_span_id,
    unrecorded_span,
)
from interlock.triggers.firing import FLOW_SYSTEM
from interlock.triggers.types import TriggerType

MAX_DEPTH = 5  # upstream runs followed back from the traced one


class Collector:
    """Spans by id (a span reached twice is kept once), nodes, and what could not be traced."""

    def __init__(self, session: Session):
        self.session = session
        self.spans: dict[str, Span] = {}
        self.nodes: list[NodeTrace] = []
        self.loaded: dict[str, Loaded] = {}  # every Interlock run traced, by id
        self.notes: list[str] = []

    def add_run(self, loaded: Loaded, *, parent_id: str | None, upstream: bool) -> str:
        """The run's span, its attempts' and the foreign runs they started; its span id."""
        run = loaded.run
        self.loaded[run.id] = loaded
        self._add(run_span(run, parent_id=parent_id, upstream=upstream))
        attempts = [a for nid in loaded.graph.order for a in loaded.attempts.get(nid, [])]
        for a in attempts:
            self._add(attempt_span(a, upstream=upstream))
        by_id = {a.id: a for a in attempts}
        for row in self._started_by(attempts):
            a = by_id[row.attempt_id or 0]
            self._add(foreign_span(row, parent_id=attempt_span_id(a.run_id, a.node_id, a.number),
                                   run_id=a.run_id, upstream=upstream))
        for span in agent_spans(self.session, attempts, upstream=upstream):
            self._add(span)
        for span in gate_spans(self.session, [run.id], upstream=upstream):
            self._add(span)
        self.nodes += [_node_trace(loaded, nid) for nid in loaded.graph.order]
        return run_span_id(run.id)

    def add_upstream(self, run: Run, depth: int = MAX_DEPTH) -> str | None:
        """The span of what triggered ``run`` (traced in turn); None if no `after:` did."""
        trigger: dict[str, Any] = run.trigger or {}
        if trigger.get("type") != TriggerType.AFTER:
            return None
        if depth <= 0:
            self.notes.append(f"run {run.id} was triggered by {_what(trigger)}: not traced, "
                              f"the upstream chain is cut after {MAX_DEPTH} runs")
            return None
        if trigger.get("system") == FLOW_SYSTEM:
            return self._upstream_run(str(trigger.get("external_id")), depth)
        return self._upstream_foreign(trigger, depth)

    def _upstream_run(self, run_id: str, depth: int) -> str | None:
        if run_span_id(run_id) in self.spans:  # already traced (a chain that loops back)
            return run_span_id(run_id)
        try:
            loaded = run_store.load(self.session, run_id)
        except NotFound:
            self.notes.append(f"upstream run {run_id} no longer exists")
            return None
        parent = self.add_upstream(loaded.run, depth - 1)
        return self.add_run(loaded, parent_id=parent, upstream=True)

    def _upstream_foreign(self, trigger: dict[str, Any], depth: int) -> str | None:
        system, job, ext = (str(trigger.get(k)) for k in ("system", "job_id", "external_id"))
        row = self.session.scalar(select(ExternalRun).where(
            ExternalRun.system == system, ExternalRun.job_id == job,
            ExternalRun.external_id == ext))
        if row is None:
            self.notes.append(f"{_what(trigger)} is no longer recorded; shown as its trigger "
                              "described it")
            return self._add(unrecorded_span(trigger, upstream=True))
        started = self.session.get(Attempt, row.attempt_id) if row.attempt_id else None
        if started is not None and self._upstream_run(started.run_id, depth) is not None:
            return foreign_span_id(system, job, ext)  # added under the attempt that started it
        return self._add(foreign_span(row, parent_id=None, run_id=None, upstream=True))

    def _started_by(self, attempts: Sequence[Attempt]) -> list[ExternalRun]:
        """Foreign runs these attempts started, as their systems reported them."""
        systems = {s for a in attempts if (s := attempt_system(a))}
        if not systems:
            return []
        return list(self.session.scalars(select(ExternalRun).where(
            ExternalRun.system.in_(systems),
            ExternalRun.attempt_id.in_([a.id for a in attempts])).order_by(ExternalRun.id)))

    def _add(self, span: Span) -> str:
        self.spans.setdefault(span.id, span)
        return span.id


def _node_trace(loaded: Loaded, node_id: str) -> NodeTrace:
    node = loaded.nodes[node_id]
    return NodeTrace(run_id=loaded.run.id, id=node_id, uses=node.uses,
                     state=NodeState(node.state), needs=loaded.flow.nodes[node_id].needs,
                     reason=node.reason, error=node.error,
                     attempts=[attempt_span_id(a.run_id, a.node_id, a.number)
                               for a in loaded.attempts.get(node_id, [])])


def _what(trigger: dict[str, Any]) -> str:
    return (f"{trigger.get('system')} {trigger.get('job_id')} run "
            f"{trigger.get('external_id')} ({trigger.get('state')})")
