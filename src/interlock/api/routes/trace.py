"""A run's trace across systems: timeline, upstream context, root cause."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.operations import runs as ops
from interlock.trace.model import RunTrace

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)


@router.get("/{run_id}/trace", response_model=RunTrace)
def run_trace(run_id: str, access: Annotated[Access, requires(Permission.RUNS_READ)]) -> RunTrace:
    """The run end to end: one span per attempt, the foreign runs its attempts started and
    the runs that triggered it (the data of a Gantt chart), and the root cause of a failure:
    the first failed node in causal order, its system, error, log excerpt and deep link."""
    return ops.run_trace(run_id, guard=access)
