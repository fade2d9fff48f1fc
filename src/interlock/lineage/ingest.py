"""OpenLineage events into the lineage store: one event, one transaction, replays ignored.

A RunEvent records its job (and system), its run with the parent facet, an edge for each
input and output, a history row per dataset, and the parent job relation. A JobEvent
records the job and its edges; a DatasetEvent the dataset's facets. The raw event is kept
in `lineage_events`, whose unique key (runId, eventType, eventTime) makes a replay a no-op.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.lineage import graph
from interlock.lineage.naming import system_of
from interlock.lineage.validate import EventKind, check, event_time
from interlock.store.tables.lineage import EVENTS, RUNS, Direction, Source

TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})


def receive(session: Session, event: Any, *, source: Source = Source.OPENLINEAGE) -> bool:
    """Validate and store one event; False if it was a replay. InvalidEvent if malformed."""
    kind = check(event)
    return store(session, event, kind=kind, source=source)


def store(session: Session, event: dict[str, Any], *, kind: EventKind,
          source: Source) -> bool:
    """Store an event that passed `validate.check`."""
    at = event_time(event["eventTime"])
    run_id = _uuid(event["run"]["runId"]) if kind is EventKind.RUN else None
    inserted = session.execute(graph.insert(session, EVENTS).values(
        key=_key(event, kind, at), kind=kind.value, run_id=run_id,
        event_type=event.get("eventType"), event_time=at, source=source.value,
        payload=event, received_at=clock.now()).on_conflict_do_nothing(index_elements=["key"])
        .returning(EVENTS.c.id)).first()
    if inserted is None:  # (rowcount would not do: PostgreSQL reports -1 with RETURNING)
        return False
    if kind is EventKind.DATASET:
        _dataset(session, event["dataset"])
        return True
    run_facets = (event["run"].get("facets") or {}) if run_id is not None else {}
    job_id = _job(session, event["job"], run_facets, at)
    datasets = [(_dataset(session, d), Direction.IN) for d in event.get("inputs", [])]
    datasets += [(_dataset(session, d), Direction.OUT) for d in event.get("outputs", [])]
    graph.edges(session, job_id=job_id, datasets=datasets, source=source, at=at)
    if run_id is not None:
        _run(session, event, run_id=run_id, job_id=job_id, at=at, source=source)
        rows = [graph.IORow(ds, d, run_id, event.get("eventType"), at) for ds, d in datasets]
        graph.history(session, job_id=job_id, rows=rows, source=source)
    return True


def _key(event: dict[str, Any], kind: EventKind, at: datetime) -> str:
    if kind is EventKind.RUN:
        text = f"run|{_uuid(event['run']['runId'])}|{event.get('eventType', '')}|{at.isoformat()}"
    else:
        text = json.dumps(event, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _uuid(text: str) -> str:
    return str(uuid.UUID(text))


def _job(session: Session, job: dict[str, Any], run_facets: dict[str, Any],
         at: datetime) -> int:
    system = system_of(job["namespace"], job.get("facets"), run_facets)
    job_id = graph.job(session, namespace=job["namespace"], name=job["name"], system=system,
                       facets=job.get("facets"))
    parent = run_facets.get("parent")
    if parent is not None:
        ref = parent["job"]
        # A parent in the same namespace is in the same system (a DAG and its tasks).
        same = system if ref["namespace"] == job["namespace"] else None
        parent_id = graph.job(session, namespace=ref["namespace"], name=ref["name"],
                              system=system_of(ref["namespace"]) or same)
        graph.parent(session, parent_id=parent_id, child_id=job_id, at=at)
    return job_id


def _dataset(session: Session, dataset: dict[str, Any]) -> int:
    return graph.dataset(session, namespace=dataset["namespace"], name=dataset["name"],
                         facets=dataset.get("facets"))


def _run(session: Session, event: dict[str, Any], *, run_id: str, job_id: int, at: datetime,
         source: Source) -> None:
    facets = event["run"].get("facets") or {}
    parent = facets.get("parent") or {}
    kind = event.get("eventType")
    query = select(RUNS).where(RUNS.c.run_id == run_id).with_for_update()
    row = session.execute(query).first()
    if row is None:
        created = session.execute(graph.insert(session, RUNS).values(
            run_id=run_id, job_id=job_id, state=kind, event_time=at,
            started_at=at if kind == "START" else None,
            ended_at=at if kind in TERMINAL else None,
            parent_run_id=_uuid(parent["run"]["runId"]) if parent else None,
            parent_job_namespace=parent["job"]["namespace"] if parent else None,
            parent_job_name=parent["job"]["name"] if parent else None,
            source=source.value, facets=graph.merge_facets({}, facets), updated_at=clock.now())
            .on_conflict_do_nothing(index_elements=["run_id"]).returning(RUNS.c.run_id)).first()
        if created is not None:
            return
        row = session.execute(query).one()  # a concurrent event created it
    changes: dict[str, Any] = {"facets": graph.merge_facets(row.facets, facets),
                               "updated_at": clock.now()}
    if at >= row.event_time and kind is not None:
        changes.update(state=kind, event_time=at)
    if kind == "START" and (row.started_at is None or at < row.started_at):
        changes["started_at"] = at
    if kind in TERMINAL:
        changes["ended_at"] = at
    if parent:
        changes.update(parent_run_id=_uuid(parent["run"]["runId"]),
                       parent_job_namespace=parent["job"]["namespace"],
                       parent_job_name=parent["job"]["name"])
    session.execute(update(RUNS).where(RUNS.c.run_id == run_id).values(**changes))
