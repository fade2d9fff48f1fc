"""Lineage a foreign system declares about its own jobs, seen when it is imported, and the
datasets its runs are seen writing (`record_asset_event`).

`interlock import <kind> --system NAME` discovers each job's `node:`; the datasets it
reads and writes there (Airflow: the inlet and outlet assets of the DAG's tasks) become
`observed` edges of the job `<system>:<job id>`, the job Airflow's OpenLineage provider
reports its DAG runs under when its namespace is the system's name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from interlock import clock
from interlock.lineage import graph, ingest
from interlock.lineage.emitted import EVENT_SCHEMA, PRODUCER, foreign_run_uuid
from interlock.store.tables.lineage import Direction, Source

SIDES = (("consumes", Direction.IN), ("produces", Direction.OUT))


def record_discovered(session: Session, document: dict[str, Any]) -> int:
    """Record the edges of every discovered job; returns how many were seen."""
    system, at, seen = document["system"], clock.now(), 0
    for job_id, job in document["jobs"].items():
        node = job.get("node") or {}
        datasets = [(graph.dataset(session, namespace=d["namespace"], name=d["name"]), side)
                    for key, side in SIDES for d in node.get(key) or []]
        if not datasets:
            continue
        job_row = graph.job(session, namespace=system, name=str(job_id), system=system)
        graph.edges(session, job_id=job_row, datasets=datasets, source=Source.OBSERVED, at=at)
        seen += len(datasets)
    return seen


def record_asset_event(session: Session, *, system: str, job: str, run_key: str,
                       at: datetime, namespace: str, name: str) -> bool:
    """A foreign system wrote a dataset (a Dagster materialization, an Airflow asset
    event): a COMPLETE event of its job writing it, stored as `observed`, so the dataset's
    history lists the writer. ``run_key`` names the write in the system (one lineage run
    per write: two assets of one run at the same millisecond stay two events)."""
    run_id = foreign_run_uuid(system, job, run_key)
    event = {"eventType": "COMPLETE", "eventTime": at.isoformat(), "producer": PRODUCER,
             "schemaURL": EVENT_SCHEMA, "run": {"runId": run_id},
             "job": {"namespace": system, "name": job}, "inputs": [],
             "outputs": [{"namespace": namespace, "name": name}]}
    return ingest.receive(session, event, source=Source.OBSERVED)
