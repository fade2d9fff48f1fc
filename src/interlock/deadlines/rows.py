"""Reading a run's deadline rows (for its public view: `GET /api/v1/runs/{id}`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.store.tables import Deadline


def of_run(session: Session, run_id: str) -> list[Deadline]:
    """The run's own deadline first, then its nodes' by id."""
    return list(session.scalars(select(Deadline).where(Deadline.run_id == run_id)
                                .order_by(Deadline.node_id)))
