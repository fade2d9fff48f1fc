"""What the console's live streams read: a filtered list of runs, or one run with its trace.

Each call is one short read of the store (one transaction); the streams
(`interlock.console.sse`) call these about once a second and send only what changed.
"""

from __future__ import annotations

from typing import Any

from interlock.operations import runs as ops
from interlock.operations.runs import Guard
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.tables import Run
from interlock.store.views import RunSummary
from interlock.triggers.types import TriggerType

MAX_SCAN = 2000  # rows looked at to fill a list filtered by trigger type
PAGE = 200


def runs(*, filters: run_store.RunFilter, trigger: TriggerType | None,
         limit: int) -> dict[str, Any]:
    """The newest ``limit`` runs matching ``filters`` (and the trigger type, read from each
    run's recorded trigger), as JSON."""
    found: list[Run] = []
    before: tuple[Any, str] | None = None
    scanned = 0
    with session_scope() as session:
        while len(found) < limit and scanned < MAX_SCAN:
            size = limit if trigger is None else PAGE
            rows = run_store.list_runs(session, filters=filters, limit=size, before=before)
            scanned += len(rows)
            found += [r for r in rows if trigger is None or _trigger_of(r) == trigger.value]
            if len(rows) < size:
                break
            before = (rows[-1].created_at, rows[-1].id)
        summaries = [RunSummary.of(r).model_dump(mode="json") for r in found[:limit]]
    return {"runs": summaries, "complete": scanned < MAX_SCAN or len(found) >= limit}


def _trigger_of(run: Run) -> str | None:
    kind = run.trigger.get("type") if isinstance(run.trigger, dict) else None
    return kind if isinstance(kind, str) else None


def run(run_id: str, *, guard: Guard) -> dict[str, Any]:
    """One run as `GET /runs/{id}` shows it (outputs hidden without `outputs:read`) and its
    trace as `GET /runs/{id}/trace` does."""
    detail = ops.get_run(run_id, guard=guard)
    trace = ops.run_trace(run_id, guard=guard)
    return {"run": detail.model_dump(mode="json"), "trace": trace.model_dump(mode="json")}
