"""Lineage a flow declares: its nodes' `produces:` and `consumes:` become `declared` edges.

Each node is the job `interlock:<namespace>/<flow>.<node>` (the names
`interlock.adapters.openlineage` gives Interlock's OpenLineage runs, so emitted events and
Airflow's parent facets land on the same job), a child of the flow's job
`interlock:<namespace>/<flow>`. Registering a flow again makes its declared edges what the
new source declares; edges other sources reported stay.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.openlineage import JOB_NAMESPACE, node_job_name
from interlock.lineage import graph
from interlock.lineage.naming import INTERLOCK
from interlock.spec.models import Dataset, Flow
from interlock.store.tables.lineage import EDGES, JOBS, NAME_MAX, NAMESPACE_MAX, Direction, Source

log = logging.getLogger(__name__)


def record_flow(session: Session, flow: Flow) -> None:
    at = clock.now()
    flow_job = graph.job(session, namespace=JOB_NAMESPACE, name=flow.ref, system=INTERLOCK)
    declared: set[tuple[int, str, int]] = set()
    for node_id, node in flow.nodes.items():
        job_id = graph.job(session, namespace=JOB_NAMESPACE, system=INTERLOCK,
                           name=node_job_name(flow.ref, node_id))
        graph.parent(session, parent_id=flow_job, child_id=job_id, at=at)
        datasets = [(ds, Direction.OUT) for ds in _ids(session, flow, node.produces)]
        datasets += [(ds, Direction.IN) for ds in _ids(session, flow, node.consumes)]
        graph.edges(session, job_id=job_id, datasets=datasets, source=Source.DECLARED, at=at)
        declared |= {(job_id, d.value, ds) for ds, d in datasets}
    _drop_undeclared(session, flow, declared)


def _ids(session: Session, flow: Flow, datasets: list[Dataset]) -> list[int]:
    ids = []
    for d in datasets:
        if not (0 < len(d.namespace) <= NAMESPACE_MAX and 0 < len(d.name) <= NAME_MAX):
            log.warning("flow %s: dataset %s:%s is not kept in lineage (namespace 1-%d and "
                        "name 1-%d characters)", flow.ref, d.namespace[:80], d.name[:80],
                        NAMESPACE_MAX, NAME_MAX)
            continue
        ids.append(graph.dataset(session, namespace=d.namespace, name=d.name))
    return ids


def _drop_undeclared(session: Session, flow: Flow, declared: set[tuple[int, str, int]]) -> None:
    nodes = select(JOBS.c.id).where(JOBS.c.namespace == JOB_NAMESPACE,
                                    JOBS.c.name.startswith(f"{flow.ref}.", autoescape=True))
    rows = session.execute(select(EDGES.c.job_id, EDGES.c.direction, EDGES.c.dataset_id).where(
        EDGES.c.source == Source.DECLARED.value, EDGES.c.job_id.in_(nodes))).all()
    stale = [tuple(r) for r in rows if tuple(r) not in declared]
    if stale:
        session.execute(delete(EDGES).where(
            EDGES.c.source == Source.DECLARED.value,
            tuple_(EDGES.c.job_id, EDGES.c.direction, EDGES.c.dataset_id).in_(stale)))
