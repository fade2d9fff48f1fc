"""Foreign systems' asset events taken in: lineage and data-aware triggers.

A Dagster materialization or an Airflow asset event, pushed with its run (the Dagster
sensor) or read by the watcher after its durable position, becomes:

- observed lineage: the system's job writing the dataset, in the dataset's history;
- a dataset update (`triggers.datasets`), which starts the flows waiting on the dataset.

The dataset is the one `mappings/datasets.yaml` maps the asset to; an asset mapped to none
is the dataset `<system>/<asset key>`. A succeeded run of a job mapped as a whole (a cron
job and the file it writes) is an update too (`of_job`). An event that is Interlock's own
report of a node's `produces:` (its metadata carries the attempt) is not taken in again:
the update was recorded when the node succeeded. Data written by a foreign run an Interlock
node started is that node's: not an update again when the node `produces:` the dataset,
and never one that starts the node's own flow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.contract import AssetEvent, ForeignEvent
from interlock.config.dataset_map import DatasetRef, dataset_of
from interlock.lineage.observed import record_asset_event
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.outbox import Dispatcher
from interlock.store.tables import Attempt, Run
from interlock.triggers import datasets as dataset_triggers
from interlock.triggers.firing import Fired, send_fired

log = logging.getLogger(__name__)
ECHO = "interlock/attempt"  # in the metadata of what Interlock reported itself
RUNLESS = "__runless__"     # the job of a write no run made (a reported materialization)


def of_job(run: ForeignEvent) -> list[AssetEvent]:
    """A succeeded foreign run of a job mapped as a whole to a dataset (a cron job that
    writes a file: `{system: cron/db1, key: export}` under the dataset's `assets:`) is an
    update of that dataset; none when the job is not mapped."""
    if dataset_of(run.system, run.job_id) is None:
        return []
    return [AssetEvent(system=run.system, key=run.job_id, ref=f"run:{run.job_id}:"
                       f"{run.external_id}", at=run.ended_at or clock.now(),
                       job_id=run.job_id, run_id=run.external_id, metadata=dict(run.details))]


def take(events: Sequence[AssetEvent], *, origin: str,
         dispatcher: Dispatcher | None) -> list[Fired]:
    """Take ``events`` in, in one transaction; start the runs they fire."""
    if not events:
        return []
    with session_scope() as session:
        fired = take_in(session, events, origin=origin)
    send_fired(dispatcher, fired)
    return fired


def take_in(session: Session, events: Sequence[AssetEvent], *, origin: str) -> list[Fired]:
    """The same in the caller's transaction (a pushed run event's own)."""
    fired: list[Fired] = []
    for event in events:
        if ECHO in event.metadata:
            continue
        dataset = dataset_of(event.system, event.key) or DatasetRef(event.system, event.key)
        _lineage(session, event, dataset)
        ours = _started_by_us(session, event)
        if ours is not None and dataset in ours.produces:
            continue  # the node's `produces:` recorded this update when it succeeded
        fired += dataset_triggers.updated(session, dataset_triggers.Update(
            namespace=dataset.namespace, name=dataset.name, ref=f"{event.system}:{event.ref}",
            system=event.system, at=event.at, job_id=event.job_id, run_id=event.run_id,
            partition=event.partition, started_by=ours.flow if ours else None,
            trace_id=ours.trace_id if ours else None,
            metadata={"key": event.key, **event.metadata}), origin=origin)
    return fired


@dataclass(frozen=True)
class _Ours:
    """The Interlock node whose attempt started the foreign run that wrote an asset."""

    flow: str
    trace_id: str
    produces: frozenset[DatasetRef]


def _started_by_us(session: Session, event: AssetEvent) -> _Ours | None:
    if not event.run_id:
        return None
    rows = session.execute(select(Attempt.node_id, Attempt.handle, Run).join(
        Run, Run.id == Attempt.run_id).where(Attempt.external_id == event.run_id)).all()
    for node_id, handle, run in rows:
        if (handle or {}).get("system") == event.system:
            node = flow_of_run(session, run).nodes[node_id]
            return _Ours(flow=f"{run.namespace}/{run.flow_id}", trace_id=run.trace_id,
                         produces=frozenset(DatasetRef(d.namespace, d.name)
                                            for d in node.produces))
    return None


def _lineage(session: Session, event: AssetEvent, dataset: DatasetRef) -> None:
    """Best effort, as for emitted lineage: a failure is logged and the update still
    counts (its savepoint is rolled back, the caller's transaction goes on)."""
    try:
        with session.begin_nested():
            record_asset_event(session, system=event.system, job=event.job_id or RUNLESS,
                               run_key=event.ref, at=event.at, namespace=dataset.namespace,
                               name=dataset.name)
    except Exception:
        log.exception("lineage of %s's asset event %s was not recorded", event.system,
                      event.ref)
