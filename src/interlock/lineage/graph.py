"""Writes to the lineage graph: jobs, datasets, edges, job parents, dataset history.

Every write is an upsert that concurrent writers can race safely (`INSERT ... ON CONFLICT`
on SQLite and PostgreSQL alike), and none commits: callers own the transaction, so an
event is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, case, select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.store.base import dialect_insert
from interlock.store.tables.lineage import (
    DATASETS,
    EDGES,
    IO,
    JOB_PARENTS,
    JOBS,
    Direction,
    Source,
)


@dataclass(frozen=True)
class IORow:
    """A run read (`in`) or wrote (`out`) a dataset at a time."""

    dataset_id: int
    direction: Direction
    run_id: str
    state: str | None
    at: datetime


insert = dialect_insert  # the dialect's INSERT (other lineage modules import it from here)


def job(session: Session, *, namespace: str, name: str, system: str | None = None,
        facets: dict[str, Any] | None = None) -> int:
    """The job's id, created if new; a known system and new facets update it."""
    row = _get_or_create(session, JOBS, namespace, name,
                         system=system or namespace, facets=merge_facets({}, facets))
    changes: dict[str, Any] = {}
    if system and system != row.system:
        changes["system"] = system
    merged = merge_facets(row.facets, facets)
    if merged != row.facets:
        changes["facets"] = merged
    if changes:
        session.execute(update(JOBS).where(JOBS.c.id == row.id)
                        .values(**changes, updated_at=clock.now()))
    return int(row.id)


def dataset(session: Session, *, namespace: str, name: str,
            facets: dict[str, Any] | None = None) -> int:
    row = _get_or_create(session, DATASETS, namespace, name, facets=merge_facets({}, facets))
    merged = merge_facets(row.facets, facets)
    if merged != row.facets:
        session.execute(update(DATASETS).where(DATASETS.c.id == row.id)
                        .values(facets=merged, updated_at=clock.now()))
    return int(row.id)


def _get_or_create(session: Session, table: Table, namespace: str, name: str,
                   **values: Any) -> Any:
    query = select(table).where(table.c.namespace == namespace, table.c.name == name)
    row = session.execute(query).first()
    if row is None:
        now = clock.now()
        session.execute(insert(session, table).values(
            namespace=namespace, name=name, created_at=now, updated_at=now, **values)
            .on_conflict_do_nothing(index_elements=["namespace", "name"]))
        row = session.execute(query).one()
    return row


def merge_facets(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    """The newest value of each facet; a facet sent with `_deleted: true` is dropped."""
    merged = dict(old)
    for key, value in (new or {}).items():
        if isinstance(value, dict) and value.get("_deleted") is True:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def edges(session: Session, *, job_id: int, datasets: Iterable[tuple[int, Direction]],
          source: Source, at: datetime) -> None:
    """Record that the job reads or writes each dataset, as ``source`` says."""
    rows = {(job_id, str(d), ds, source.value): {
        "job_id": job_id, "direction": str(d), "dataset_id": ds, "source": source.value,
        "first_seen": at, "last_seen": at} for ds, d in datasets}
    if not rows:
        return
    stmt = insert(session, EDGES).values(list(rows.values()))
    session.execute(stmt.on_conflict_do_update(
        index_elements=["job_id", "direction", "dataset_id", "source"],
        set_={"last_seen": _later(stmt.excluded.last_seen, EDGES.c.last_seen)}))


def parent(session: Session, *, parent_id: int, child_id: int, at: datetime) -> None:
    """Record that runs of ``child_id`` were spawned by runs of ``parent_id``."""
    if parent_id == child_id:
        return
    stmt = insert(session, JOB_PARENTS).values(parent_id=parent_id, child_id=child_id,
                                               first_seen=at, last_seen=at)
    session.execute(stmt.on_conflict_do_update(
        index_elements=["parent_id", "child_id"],
        set_={"last_seen": _later(stmt.excluded.last_seen, JOB_PARENTS.c.last_seen)}))


def history(session: Session, *, job_id: int, rows: Iterable[IORow], source: Source) -> None:
    """One history row per (run, dataset, direction): the newest event's time and state."""
    values = {(r.run_id, r.dataset_id, str(r.direction)): {
        "run_id": r.run_id, "dataset_id": r.dataset_id, "direction": str(r.direction),
        "job_id": job_id, "state": r.state, "source": source.value, "at": r.at} for r in rows}
    if not values:
        return
    stmt = insert(session, IO).values(list(values.values()))
    newer = stmt.excluded.at >= IO.c.at
    session.execute(stmt.on_conflict_do_update(
        index_elements=["run_id", "dataset_id", "direction"],
        set_={"at": case((newer, stmt.excluded.at), else_=IO.c.at),
              "state": case((newer, stmt.excluded.state), else_=IO.c.state)}))


def _later(new: Any, old: Any) -> Any:
    return case((new > old, new), else_=old)
