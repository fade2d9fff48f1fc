"""Triggers on data: `after: {dataset: ...}` and `after: {datasets: [...], mode: all}`.

Any system's write of a dataset becomes one `dataset_updates` row (`updated`): an Interlock
node's `produces:`, a Dagster materialization, an Airflow asset event (mapped to the dataset
in `mappings/datasets.yaml`). The row's unique `ref` (the update's name in its source) makes
the same update seen by push and by the watcher, or by two workers, one row; the firing's
unique key then starts each waiting flow once per update.

`mode: all` is Airflow's `AssetAll` across tools: the flow fires once every listed dataset
was updated since it last fired this way (for a new trigger: since its flow revision was
registered). The trigger's `dataset_waits` row is locked before the updates are counted, so
two updates committed at the same moment cannot both miss that the set became complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters.openlineage import JOB_NAMESPACE, node_job_name
from interlock.config.dataset_map import dataset_ref
from interlock.lineage import graph
from interlock.lineage.naming import INTERLOCK
from interlock.spec.models import After, Flow
from interlock.store import facts
from interlock.store.base import dialect_insert
from interlock.store.flows import flows_with_after, load_flow_of
from interlock.store.tables import DatasetUpdate, DatasetWait, FlowRevision
from interlock.store.tables.lineage import Direction, Source
from interlock.triggers.firing import Fired, condition_holds, fire
from interlock.triggers.types import TriggerType

KEY_MAX = 500  # dataset_updates.ref, dataset_waits.key, trigger_firings.key
UPDATES = DatasetUpdate.__table__
WAITS = DatasetWait.__table__


@dataclass(frozen=True)
class Update:
    """One write of one dataset, as its source names it."""

    namespace: str                # the dataset, as lineage names it
    name: str
    ref: str                      # unique in its source, e.g. `dagster/prod:<run>:<key>:<ms>`
    system: str                   # a registered system, or `interlock` for a node
    at: datetime
    job_id: str | None = None     # the DAG, Dagster job or `namespace/flow` that wrote it
    run_id: str | None = None     # its run there
    partition: str | None = None
    started_by: str | None = None  # the flow whose run wrote it: never re-triggered by it
    trace_id: str | None = None    # the trace of the run that wrote it: the started run's
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """As `after: {dataset: ...}` names it (`config.dataset_map.dataset_ref`)."""
        return dataset_ref(self.namespace, self.name)

    def context(self) -> dict[str, Any]:
        """What a triggered run records as its trigger."""
        return {"type": TriggerType.AFTER, "dataset": self.dataset, "system": self.system,
                "job_id": self.job_id, "external_id": self.run_id,
                "partition": self.partition, "ref": self.ref}

    def shown(self) -> dict[str, Any]:
        """What `after.if` and the trigger's `inputs:` see as `trigger`."""
        return {**self.context(), "metadata": facts.bounded(self.metadata),
                "at": self.at.isoformat()}


def updated(session: Session, upd: Update, *, origin: str) -> list[Fired]:
    """Record ``upd`` once and start the flows it completes; [] for an update seen before."""
    update_id = session.execute(dialect_insert(session, UPDATES).values(
        ref=_key(upd.ref), dataset=upd.dataset, system=upd.system[:200],
        job_id=_cut(upd.job_id), run_id=_cut(upd.run_id), partition=_cut(upd.partition),
        details=facts.bounded(upd.metadata), at=upd.at)
        .on_conflict_do_nothing(index_elements=["ref"]).returning(UPDATES.c.id)).scalar()
    if update_id is None:
        return []
    fired = []
    for revision in flows_with_after(session):
        flow = load_flow_of(revision)
        if flow.ref == upd.started_by:
            continue
        for index, trigger in enumerate(flow.triggers):
            after = trigger.after
            if after is None or upd.dataset not in after.watched_datasets:
                continue
            shown = upd.shown()
            if after.if_ is not None and not condition_holds(session, flow, after, shown,
                                                             origin):
                continue
            if after.mode == "all":
                complete = _complete(session, revision, flow, index, after)
                if complete is None:
                    continue
                key = f"{flow.ref}#datasets:{index}:{_digest(complete)}"
                shown["updates"] = complete
            else:
                key = f"{flow.ref}#dataset:{upd.ref}"
            if (started := fire(session, revision, flow, _key(key), upd.context(), origin,
                                mapping=trigger.inputs, shown=shown, trace_id=upd.trace_id)):
                fired.append(started)
                _consumed(session, flow, upd)
    return fired


def _consumed(session: Session, flow: Flow, upd: Update) -> None:
    """Lineage: the nodes the update starts (the flow's roots) read the dataset, so an
    impact query from the writer reaches the flow and what its nodes write."""
    at, dataset = clock.now(), graph.dataset(session, namespace=upd.namespace, name=upd.name)
    for node_id, node in flow.nodes.items():
        if not node.needs:
            job_id = graph.job(session, namespace=JOB_NAMESPACE, system=INTERLOCK,
                               name=node_job_name(flow.ref, node_id))
            graph.edges(session, job_id=job_id, datasets=[(dataset, Direction.IN)],
                        source=Source.OBSERVED, at=at)


def _complete(session: Session, revision: FlowRevision, flow: Flow, index: int,
              after: After) -> dict[str, int] | None:
    """The newest update of each dataset when every one is newer than what this trigger
    consumed (and mark them consumed); None while one is still waited for."""
    names = sorted(set(after.watched_datasets))
    key = _key(f"{flow.ref}#{index}:{_digest(names)}")
    session.execute(dialect_insert(session, WAITS).values(
        key=key, consumed=_before(session, names, revision.created_at), updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=["key"]))
    consumed = session.execute(select(WAITS.c.consumed).where(WAITS.c.key == key)
                               .with_for_update()).scalar_one()
    newest = dict(session.execute(select(UPDATES.c.dataset, func.max(UPDATES.c.id))
                                  .where(UPDATES.c.dataset.in_(names))
                                  .group_by(UPDATES.c.dataset)).all())
    if any(newest.get(name, 0) <= int(consumed.get(name, 0)) for name in names):
        return None
    session.execute(update(WAITS).where(WAITS.c.key == key).values(
        consumed=newest, updated_at=clock.now()))
    return {name: int(newest[name]) for name in names}


def _before(session: Session, names: list[str], registered: datetime) -> dict[str, int]:
    """What counts as consumed when a trigger is first seen: updates older than its flow."""
    rows = session.execute(select(UPDATES.c.dataset, func.max(UPDATES.c.id))
                           .where(UPDATES.c.dataset.in_(names), UPDATES.c.at < registered)
                           .group_by(UPDATES.c.dataset)).all()
    return {name: int(last) for name, last in rows}


def _key(text: str) -> str:
    """A unique key within its column (500): a longer one keeps its head and a digest of
    the whole, so two long keys that differ only in their tail stay two."""
    if len(text) <= KEY_MAX:
        return text
    return f"{text[:KEY_MAX - 65]}#{hashlib.sha256(text.encode()).hexdigest()}"


def _digest(value: Any) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


def _cut(text: str | None, limit: int = 250) -> str | None:
    return None if text is None else str(text)[:limit]
