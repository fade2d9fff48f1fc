"""The root cause of a run: its first failure in causal order.

- Nodes skipped because an upstream node did not succeed are symptoms, not causes.
- Among the failed (failed, timed out, lost) nodes with no failed node upstream of them
  (`needs:`, transitively), the one that finished first is the cause; the others are
  listed as `also_failed`.
- A failed run with no failed node that an upstream failure triggered (`after:` with a
  failed state) has the upstream's cause (followed across runs, or the foreign run).
- A run that succeeded, or has failed nothing yet, has no root cause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.states import NODE_FAILED, STATE_WORDS, NodeState, RunState, SkipCause
from interlock.store.runs import Loaded
from interlock.store.tables import Attempt
from interlock.trace.collect import MAX_DEPTH
from interlock.trace.model import RootCause, Span
from interlock.trace.spans import attempt_span_id, foreign_span_id, run_span_id
from interlock.triggers.firing import FLOW_SYSTEM
from interlock.triggers.types import TriggerType

FAILED = NODE_FAILED
FAILED_WORDS = STATE_WORDS["failed"]
_VERB = {NodeState.FAILED: "failed", NodeState.TIMED_OUT: "timed out",
         NodeState.LOST: "was lost", NodeState.SKIPPED: "skipped"}


def root_cause(run_id: str, loaded: dict[str, Loaded], spans: dict[str, Span],
               depth: int = MAX_DEPTH) -> RootCause | None:
    """``loaded`` and ``spans`` hold the traced runs (upstream ones too) and their spans."""
    run = loaded[run_id]
    failed = [nid for nid in run.graph.order if _state(run, nid) in FAILED]
    if failed:
        return _node_cause(run, failed, spans)
    if run.run.state != RunState.FAILED.value:
        return None
    return _upstream_cause(run, loaded, spans, depth) or _run_cause(run)


def _state(run: Loaded, node_id: str) -> NodeState:
    return NodeState(run.nodes[node_id].state)


def _last(run: Loaded, node_id: str) -> Attempt | None:
    attempts = run.attempts.get(node_id, [])
    return attempts[-1] if attempts else None


def _failed_at(run: Loaded, node_id: str) -> datetime:
    last = _last(run, node_id)
    return (last.finished_at if last is not None and last.finished_at else None) \
        or run.nodes[node_id].updated_at


def _node_cause(run: Loaded, failed: list[str], spans: dict[str, Span]) -> RootCause:
    ancestors = run.graph.ancestors
    first = [nid for nid in failed if not ancestors[nid] & set(failed)]
    order = run.graph.order
    first.sort(key=lambda nid: (_failed_at(run, nid), order.index(nid)))
    root, node, last = first[0], run.nodes[first[0]], _last(run, first[0])
    span = spans.get(attempt_span_id(run.run.id, root, last.number)) if last else None
    return RootCause(
        span_id=span.id if span else run_span_id(run.run.id), node_id=root,
        run_id=run.run.id, system=span.system if span else None, uses=node.uses,
        external_id=last.external_id if last else None,
        error=node.error or (last.error if last else None),
        log_excerpt=last.log_excerpt if last else None,
        deep_link=span.deep_link if span else None, at=_failed_at(run, root),
        path=_path(run, root), also_failed=first[1:])


def _path(run: Loaded, root: str) -> list[str]:
    """From the furthest node the failure reached, back to the failed node."""
    memo: dict[str, list[str] | None] = {}
    chains = [c for nid in run.graph.order if (c := _chain(run, nid, root, memo))]
    longest = max(chains, key=len)  # of equals, max keeps the first in graph order
    steps = [f"{down} {_VERB.get(_state(run, down), _state(run, down).value)}: upstream "
             f"{up} {_VERB.get(_state(run, up), _state(run, up).value)}"
             for down, up in zip(longest, longest[1:], strict=False)]
    return steps + [_failure(run, root)]


def _chain(run: Loaded, node_id: str, root: str,
           memo: dict[str, list[str] | None]) -> list[str] | None:
    """The longest `needs:` path from ``node_id`` up to ``root`` through nodes the failure
    reached (failed, or skipped because an upstream node did not succeed)."""
    if node_id == root:
        return [root]
    if node_id not in memo:
        reached = (_state(run, node_id) in FAILED
                   or run.nodes[node_id].skip_cause == SkipCause.UPSTREAM.value)
        ups = [c for up in run.graph.upstream(node_id) if reached
               and (c := _chain(run, up, root, memo))]
        memo[node_id] = [node_id, *max(ups, key=len)] if ups else None
    return memo[node_id]


def _failure(run: Loaded, node_id: str) -> str:
    node, tries = run.nodes[node_id], len(run.attempts.get(node_id, []))
    error = node.error or (a.error if (a := _last(run, node_id)) else None)
    text = f"{node_id} {_VERB[_state(run, node_id)]}"
    text += f" after {tries} attempts" if tries > 1 else ""
    return text + (f": {_first_line(error)}" if error else "")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:300]


def _upstream_cause(run: Loaded, loaded: dict[str, Loaded], spans: dict[str, Span],
                    depth: int) -> RootCause | None:
    trigger: dict[str, Any] = run.run.trigger or {}
    if trigger.get("type") != TriggerType.AFTER or trigger.get("state") not in FAILED_WORDS:
        return None
    system, job, ext = (str(trigger.get(k)) for k in ("system", "job_id", "external_id"))
    head = (f"run {run.run.id} failed with no failed node; {system} {job} run {ext} "
            f"{trigger.get('state')} and triggered it")
    if system == FLOW_SYSTEM and ext in loaded and depth > 0:
        found = root_cause(ext, loaded, spans, depth - 1)
        return found.model_copy(update={"path": [head, *found.path]}) if found else None
    span = spans.get(foreign_span_id(system, job, ext))
    if span is None:
        return None
    error = span.error or f"{job} run {ext} {span.remote_status or span.state} on {system}"
    return RootCause(span_id=span.id, node_id=span.node_id, run_id=None, system=system,
                     uses=span.uses, external_id=ext, error=error, log_excerpt=None,
                     deep_link=span.deep_link, at=span.finished_at,
                     path=[head, f"{span.label} run {ext} {span.state}: {error}"])


def _run_cause(run: Loaded) -> RootCause:
    reason = run.run.reason or "no reason recorded"
    return RootCause(span_id=run_span_id(run.run.id), node_id=None, run_id=run.run.id,
                     system=None, uses=None, external_id=None, error=run.run.reason,
                     log_excerpt=None, deep_link=None, at=run.run.finished_at,
                     path=[f"run {run.run.id} failed: {reason}"])
