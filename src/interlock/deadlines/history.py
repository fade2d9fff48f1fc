"""How long each node usually takes: the p90 of its last succeeded attempts' durations
(created -> finished) in the same flow, whatever system ran it (a script, an Airflow DAG, a
Dagster job: the attempt's times are Interlock's own). A node without history yet that
names a foreign job (`with: {system, dag_id | job}`, literal values) falls back to the
durations of that job's runs Interlock observed in the system (`external_runs`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.deadlines.estimate import p90
from interlock.spec.models import Node
from interlock.states import NodeState
from interlock.store.tables import Attempt, ExternalRun, Run

SAMPLES = 50          # the last this many successes count
JOB_KEYS = ("dag_id", "job")  # the `with:` keys naming a foreign job (as trace/lineage read)


class History:
    """p90 durations for the nodes of one flow, read once per key for a monitor's tick."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._seen: dict[tuple[str, ...], float | None] = {}

    def p90_of(self, namespace: str, flow_id: str, node_id: str, node: Node) -> float | None:
        key = (namespace, flow_id, node_id)
        if key not in self._seen:
            own = p90(self._own(namespace, flow_id, node_id))
            self._seen[key] = own if own is not None else self._foreign(node)
        return self._seen[key]

    def _own(self, namespace: str, flow_id: str, node_id: str) -> list[float]:
        rows = self._session.execute(
            select(Attempt.created_at, Attempt.finished_at)
            .join(Run, Run.id == Attempt.run_id)
            .where(Run.namespace == namespace, Run.flow_id == flow_id,
                   Attempt.node_id == node_id, Attempt.state == NodeState.SUCCEEDED.value,
                   Attempt.finished_at.is_not(None))
            .order_by(Attempt.finished_at.desc()).limit(SAMPLES)).all()
        return [(end - start).total_seconds() for start, end in rows]

    def _foreign(self, node: Node) -> float | None:
        system = node.with_.get("system")
        job = next((node.with_[k] for k in JOB_KEYS if k in node.with_), None)
        if not _literal(system) or not _literal(job):
            return None
        rows = self._session.execute(
            select(ExternalRun.started_at, ExternalRun.ended_at)
            .where(ExternalRun.system == system, ExternalRun.job_id == job,
                   ExternalRun.state == NodeState.SUCCEEDED.value,
                   ExternalRun.started_at.is_not(None), ExternalRun.ended_at.is_not(None))
            .order_by(ExternalRun.ended_at.desc()).limit(SAMPLES)).all()
        return p90([max(0.0, (end - start).total_seconds()) for start, end in rows])


def _literal(value: object) -> bool:
    """A plain name, not an expression rendered per run."""
    return isinstance(value, str) and bool(value) and "{{" not in value
