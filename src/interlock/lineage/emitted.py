"""The OpenLineage events Interlock emits for its own attempts, stored as source `emitted`.

For a succeeded attempt, a COMPLETE RunEvent of the node's job (`interlock.adapters.openlineage`
names it: run id `attempt_uuid(key)`, parent and root the flow run), reading the node's
`consumes:` and writing its `produces:`, so each produced dataset gets a history row.

When the attempt ran a job in a foreign system (its handle names the system and the
foreign run: an Airflow `dag_run_id`, a Dagster run id), a second COMPLETE event for that
foreign run whose parent facet is the attempt. That is the link between Interlock's run
and the foreign one: the attempt spawned it, exactly as `conf["openlineage"]` tells
Airflow's provider. The foreign run keeps its id when it is a UUID (Dagster's are) and
otherwise gets `uuid5` of `<system>/<job>/<external id>`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from interlock import __version__, clock
from interlock.adapters.openlineage import JOB_NAMESPACE, attempt_uuid, node_job_name, run_uuid
from interlock.lineage import ingest
from interlock.spec.models import Dataset, Flow
from interlock.store.tables import ATTEMPTS, Attempt
from interlock.store.tables.lineage import Source

log = logging.getLogger(__name__)

PRODUCER = f"https://interlock.invalid/releases/{__version__}"
EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
PARENT_SCHEMA = "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet"
JOB_TYPE_SCHEMA = \
    "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
ASSET_JOB = "__ASSET_JOB"  # the job Dagster runs an asset selection in
_FOREIGN_RUNS = uuid.UUID("0c6b7f3e-5d9a-4e21-8f47-2a1b3c4d5e6f")  # namespace of derived ids


@dataclass(frozen=True)
class Done:
    """What the events need of a finished attempt."""

    run_id: str
    node_id: str
    key: str
    finished_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    handle: dict[str, Any] = field(default_factory=dict)


def record_attempt(session: Session, attempt: Attempt, flow: Flow) -> int:
    """Store the events of a succeeded attempt in the caller's transaction; the number new.

    Lineage must never fail a run: any error is logged and its writes rolled back to a
    savepoint, and the caller's transaction goes on.
    """
    try:
        if nothing_to_say(attempt, flow):
            return 0  # no statement at all: the hot path of noop-like nodes stays as it was
        with session.begin_nested():
            events = attempt_events(_done(session, attempt), flow)
            return sum(ingest.receive(session, e, source=Source.EMITTED) for e in events)
    except Exception:
        # `inspect` reads the identity without loading anything (the session may be broken).
        log.exception("lineage of attempt %s was not recorded", inspect(attempt).identity)
        return 0


def nothing_to_say(attempt: Attempt, flow: Flow) -> bool:
    """No datasets and no foreign system: the handle as the caller knows it decides (a
    foreign job's handle names its system from the submit on)."""
    node = flow.nodes[attempt.node_id]
    return not node.produces and not node.consumes and not (attempt.handle or {}).get("system")


def _done(session: Session, attempt: Attempt) -> Done:
    row = session.execute(select(ATTEMPTS).where(ATTEMPTS.c.id == attempt.id)).one()
    return Done(run_id=row.run_id, node_id=row.node_id, key=row.key,
                finished_at=row.finished_at or clock.now(), params=row.params or {},
                handle=row.handle or {})


def attempt_events(done: Done, flow: Flow) -> list[dict[str, Any]]:
    """The attempt's event, and its foreign run's; none for a node with no datasets that
    ran nothing foreign (a `noop`), so the hot path of such nodes writes no lineage."""
    node = flow.nodes[done.node_id]
    foreign = foreign_job(done)
    if not node.produces and not node.consumes and foreign is None:
        return []
    node_job = node_job_name(flow.ref, done.node_id)
    root = _ref(run_uuid(done.run_id), JOB_NAMESPACE, flow.ref)
    events = [_event(done.finished_at, job=(JOB_NAMESPACE, node_job),
                     run_id=attempt_uuid(done.key), parent=root, root=root,
                     inputs=node.consumes, outputs=node.produces)]
    if foreign is not None:
        system, name, run_id = foreign
        events.append(_event(done.finished_at, job=(system, name), run_id=run_id,
                             parent=_ref(attempt_uuid(done.key), JOB_NAMESPACE, node_job),
                             root=root))
    return events


def foreign_job(done: Done) -> tuple[str, str, str] | None:
    """(system, job name, OpenLineage run id) of the foreign run the attempt started."""
    system, external = done.handle.get("system"), done.handle.get("external_id")
    data = done.handle.get("data") or {}
    name = done.params.get("dag_id") or done.params.get("job") or data.get("dag_id") \
        or data.get("job") or (ASSET_JOB if done.params.get("assets") else None)
    if not (isinstance(system, str) and system and isinstance(external, str) and external
            and isinstance(name, str) and name):
        return None
    return system, name, foreign_run_uuid(system, name, external)


def foreign_run_uuid(system: str, job: str, external_id: str) -> str:
    try:
        return str(uuid.UUID(external_id))
    except ValueError:
        return str(uuid.uuid5(_FOREIGN_RUNS, f"{system}/{job}/{external_id}"))


def _ref(run_id: str, namespace: str, name: str) -> dict[str, Any]:
    return {"run": {"runId": run_id}, "job": {"namespace": namespace, "name": name}}


def _event(at: datetime, *, job: tuple[str, str], run_id: str, parent: dict[str, Any],
           root: dict[str, Any], inputs: list[Dataset] | None = None,
           outputs: list[Dataset] | None = None) -> dict[str, Any]:
    parent_facet = {"_producer": PRODUCER, "_schemaURL": PARENT_SCHEMA, **parent, "root": root}
    job_type = {"_producer": PRODUCER, "_schemaURL": JOB_TYPE_SCHEMA,
                "processingType": "BATCH", "integration": "INTERLOCK", "jobType": "NODE"}
    namespace, name = job
    return {
        "eventType": "COMPLETE", "eventTime": at.isoformat(), "producer": PRODUCER,
        "schemaURL": EVENT_SCHEMA,
        "run": {"runId": run_id, "facets": {"parent": parent_facet}},
        "job": {"namespace": namespace, "name": name,
                "facets": {"jobType": job_type} if namespace == JOB_NAMESPACE else {}},
        "inputs": [{"namespace": d.namespace, "name": d.name} for d in inputs or []],
        "outputs": [{"namespace": d.namespace, "name": d.name} for d in outputs or []],
    }
