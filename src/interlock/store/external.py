"""External runs: what foreign systems report about their runs, ours and theirs."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.contract import ForeignEvent
from interlock.states import NODE_TERMINAL, NodeState
from interlock.store import facts
from interlock.store.tables import ExternalRun

DETAIL_BYTES = facts.MAX_TOTAL_BYTES
DETAIL_DEPTH = 6


@dataclass(frozen=True)
class Seen:
    run: ExternalRun
    finished_now: bool  # this event moved it into a terminal state


def record(session: Session, event: ForeignEvent, *, attempt_id: int | None) -> Seen:
    """Insert or update the run the event is about (events may arrive out of order:
    a terminal state is never replaced by a running one)."""
    row = session.scalar(select(ExternalRun).where(
        ExternalRun.system == event.system, ExternalRun.job_id == event.job_id,
        ExternalRun.external_id == event.external_id).with_for_update())
    if row is None:
        row = ExternalRun(system=event.system, job_id=event.job_id,
                          external_id=event.external_id, state=NodeState.RUNNING.value,
                          remote_status="", details={}, updated_at=clock.now())
        session.add(row)
    was_final = NodeState(row.state) in NODE_TERMINAL
    if was_final and event.state not in NODE_TERMINAL:
        return Seen(row, finished_now=False)
    row.state, row.remote_status = event.state.value, event.remote_status
    row.run_type = event.run_type or row.run_type
    row.attempt_id = attempt_id if attempt_id is not None else row.attempt_id
    row.started_at = event.started_at or row.started_at
    row.ended_at = event.ended_at or row.ended_at
    # What the system said about its run (an Airflow conf, Dagster tags, a cron job's
    # output tail) came from outside: each field over 16 KiB, or a part nested past 6
    # levels, is kept as its fact (sha256 + size); small fields (the ids that find the
    # attempt) always stay as they are.
    row.details = {**row.details, **{
        key: facts.bounded(value, max_bytes=DETAIL_BYTES, max_depth=DETAIL_DEPTH,
                           max_total=DETAIL_BYTES)
        for key, value in event.details.items()}}
    row.updated_at = clock.now()
    session.flush()
    return Seen(row, finished_now=not was_final and event.state in NODE_TERMINAL)
