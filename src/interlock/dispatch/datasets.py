"""What happens when a node writes data: its `produces:` datasets are updated.

A succeeded attempt whose node `produces:` datasets gets REPORT work (in the transaction
that records its success), which, outside that transaction:

- tells each system the dataset is mapped to in `mappings/datasets.yaml` (a runless
  materialization in Dagster, an asset event in Airflow), with the run, node, attempt and
  trace id as metadata, so their own asset-scheduled jobs start from data made elsewhere.
  Each (attempt, system, asset) is reported once (`launch_once`: a retry after one system
  was down does not report again to the others); a node is never reported to the system
  that ran it;
- records the update (`triggers.datasets`), which starts the flows waiting on it
  (`after: {dataset: ...}`).
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.launches import launch_once
from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.config.dataset_map import DatasetRef, Target, targets_of
from interlock.config.systems import load_systems
from interlock.errors import InterlockError, Rejected, Transient
from interlock.lineage import graph
from interlock.spec.models import Dataset
from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.outbox import Dispatcher
from interlock.store.tables import Attempt, Run, TaskKind
from interlock.store.tables.lineage import NAME_MAX, Direction, Source
from interlock.triggers import datasets as dataset_triggers
from interlock.triggers.firing import FLOW_SYSTEM, Fired, send_fired

log = logging.getLogger(__name__)
ORIGIN = "worker"
RESULT_MAX = 250  # a launch claim's result column


def report(attempt_id: int, *, dispatcher: Dispatcher | None = None,
           registry: AdapterRegistry | None = None) -> None:
    """The REPORT work of a succeeded attempt; a Transient error leaves the outbox row, so
    what was not reported yet is reported after the lease (at least once per target)."""
    registry = registry or default_registry()
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        if attempt is None:
            return
        run = session.get(Run, attempt.run_id)
        assert run is not None
        produces = flow_of_run(session, run).nodes[attempt.node_id].produces
        metadata = {"interlock/run_id": run.id, "interlock/node_id": attempt.node_id,
                    "interlock/attempt": attempt.number, "interlock/trace_id": run.trace_id,
                    "interlock/flow": f"{run.namespace}/{run.flow_id}"}
        run_id, uses, key, flow = run.id, attempt.uses, attempt.key, metadata["interlock/flow"]
        trace_id = run.trace_id
        at = attempt.finished_at or clock.now()
    systems = load_systems()
    readers: list[tuple[Dataset, Target, list[str]]] = []
    for dataset in produces:
        for target in targets_of([DatasetRef(dataset.namespace, dataset.name)]):
            kind = systems.get(target.system).kind if target.system in systems else None
            if kind is None or kind == uses:
                continue
            try:
                started = launch_once(_report_key(key, target), lambda t=target, k=kind: _send(
                    registry, k, t, metadata))
            except Transient:
                raise
            except (Rejected, InterlockError) as exc:
                log.warning("reporting %s to %s failed, not retried: %s", target.key,
                            target.system, exc)
                continue
            readers.append((dataset, target, _jobs(started)))
    fired: list[Fired] = []
    with session_scope() as session:
        _record_readers(session, readers)
        for dataset in produces:
            fired += dataset_triggers.updated(session, dataset_triggers.Update(
                namespace=dataset.namespace, name=dataset.name,
                ref=f"{FLOW_SYSTEM}:{key}:{dataset.namespace}/{dataset.name}",
                system=FLOW_SYSTEM, at=at, job_id=flow, run_id=run_id,
                started_by=flow, trace_id=trace_id, metadata=metadata), origin=ORIGIN)
        outbox.complete(session, kind=TaskKind.REPORT, run_id=run_id, attempt_id=attempt_id)
    send_fired(dispatcher, fired)


def _send(registry: AdapterRegistry, kind: str, target: Target,
          metadata: dict[str, object]) -> str:
    """Report once; what the claim keeps is the jobs the report starts there (JSON)."""
    jobs = registry.get(kind).report_materialization(target.system, target.key,
                                                     metadata=metadata)
    kept: list[str] = []
    for job in sorted({str(j) for j in jobs or []}):
        if len(json.dumps([*kept, job])) > RESULT_MAX:
            break  # lineage keeps the first ones; the report itself was made
        kept.append(job)
    return json.dumps(kept)


def _jobs(claimed: str) -> list[str]:
    """The jobs a report started, from its claim (a claim of an older release: none)."""
    try:
        jobs = json.loads(claimed)
    except ValueError:
        return []
    return [j for j in jobs if isinstance(j, str)] if isinstance(jobs, list) else []


def _record_readers(session: Session, readers: list[tuple[Dataset, Target, list[str]]]
                    ) -> None:
    """Lineage: the foreign jobs a report starts read the dataset (an Airflow DAG scheduled
    on the asset), so an impact query from a writer reaches them."""
    at = clock.now()
    for dataset, target, jobs in readers:
        if not jobs:
            continue
        dataset_id = graph.dataset(session, namespace=dataset.namespace, name=dataset.name)
        for job in jobs:
            job_id = graph.job(session, namespace=target.system, name=job[:NAME_MAX],
                               system=target.system)
            graph.edges(session, job_id=job_id, datasets=[(dataset_id, Direction.IN)],
                        source=Source.OBSERVED, at=at)


def _report_key(attempt_key: str, target: Target) -> str:
    """The launch claim of one report: fits the claims' key column whatever the names."""
    text = f"{attempt_key}\n{target.system}\n{target.key}"
    return "report:" + hashlib.sha256(text.encode()).hexdigest()


def schedule(session: Session, attempt: Attempt, produces: list[Dataset]) -> bool:
    """Add the REPORT work of ``attempt`` when its node produced something."""
    if not produces:
        return False
    outbox.add(session, outbox.Work(TaskKind.REPORT, attempt.run_id, attempt.id))
    return True


def send(dispatcher: Dispatcher, attempt: Attempt) -> None:
    dispatcher.send(outbox.Work(TaskKind.REPORT, attempt.run_id, attempt.id))
