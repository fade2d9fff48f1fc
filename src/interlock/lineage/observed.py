"""Lineage a foreign system declares about its own jobs, seen when it is imported.

`interlock import <kind> --system NAME` discovers each job's `node:`; the datasets it
reads and writes there (Airflow: the inlet and outlet assets of the DAG's tasks) become
`observed` edges of the job `<system>:<job id>`, the job Airflow's OpenLineage provider
reports its DAG runs under when its namespace is the system's name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from interlock import clock
from interlock.lineage import graph
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
