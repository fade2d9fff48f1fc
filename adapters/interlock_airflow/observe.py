"""Polling: many in-flight DAG runs observed with one listing request per system.

A finished run costs a little more, once: a failed run's task instances (one request for
all failed runs of a system) and the failed task's log; a succeeded run's XCom values
for `outputs_from`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from airflow_client import client as af

from interlock.adapters import Handle, NodeState, Observation
from interlock_airflow import runs, tasks
from interlock_airflow.client import AirflowSession, RemoteNotFound
from interlock_airflow.links import FAILED_TASKS, NONE_REPORTED
from interlock_airflow.mapping import dag_run_state

EXCERPT_CAP = 2_000


def observe(s: AirflowSession, handles: Sequence[Handle]) -> list[Observation]:
    since = min(datetime.fromisoformat(h.data["run_after"]) for h in handles)
    listed = runs.list_since(s, {h.data["dag_id"] for h in handles}, since)
    found = [(h, listed.get((h.data["dag_id"], h.external_id)) or _lookup(s, h))
             for h in handles]
    failed = [r for _, r in found if r is not None and _state(r) is NodeState.FAILED]
    failed_tasks = _failed_tasks(s, failed)
    return [_observation(s, h, run, failed_tasks) for h, run in found]


def _lookup(s: AirflowSession, handle: Handle) -> af.DAGRunResponse | None:
    """A run the listing missed (a clock skew on run_after): ask for it by id."""
    try:
        return runs.get(s, handle.data["dag_id"], handle.external_id)
    except RemoteNotFound:
        return None


def _state(run: af.DAGRunResponse) -> NodeState:
    return dag_run_state(run.state.value)


def _failed_tasks(s: AirflowSession, failed: Sequence[af.DAGRunResponse],
                  ) -> dict[str, list[af.TaskInstanceResponse]]:
    if not failed:
        return {}
    by_run: dict[str, list[af.TaskInstanceResponse]] = defaultdict(list)
    instances = tasks.of_runs(s, [r.dag_id for r in failed], [r.dag_run_id for r in failed])
    for ti in tasks.failed(instances):
        by_run[ti.dag_run_id].append(ti)
    return by_run


def _observation(s: AirflowSession, handle: Handle, run: af.DAGRunResponse | None,
                 failed_tasks: dict[str, list[af.TaskInstanceResponse]]) -> Observation:
    if run is None:
        return Observation(handle=handle, state=NodeState.LOST, remote_status="missing",
                           error=f"DAG run {handle.external_id} of {handle.data['dag_id']} "
                                 f"no longer exists on {s.system.name}")
    state, status = _state(run), run.state.value
    if state is NodeState.SUCCEEDED:
        return Observation(handle=handle, state=state, remote_status=status,
                           outputs=_outputs(s, handle, run))
    if state is NodeState.FAILED:
        culprits = failed_tasks.get(run.dag_run_id, [])
        names = ", ".join(ti.task_id for ti in culprits) or NONE_REPORTED
        excerpt = tasks.log_text(s, culprits[0], cap=EXCERPT_CAP) if culprits else None
        return Observation(handle=handle, state=state, remote_status=status,
                           error=f"DAG run {run.dag_run_id} of {run.dag_id} failed on "
                                 f"{s.system.name}; {FAILED_TASKS}: {names}",
                           log_excerpt=excerpt)
    return Observation(handle=handle, state=state, remote_status=status)


def _outputs(s: AirflowSession, handle: Handle, run: af.DAGRunResponse) -> dict[str, Any]:
    """Each listed task's return value under its id; dict values also merged at the top."""
    outputs: dict[str, Any] = {"dag_run_id": run.dag_run_id}
    for task_id in handle.data.get("outputs_from", []):
        value = tasks.return_value(s, run.dag_id, run.dag_run_id, task_id)
        if isinstance(value, dict):
            outputs.update(value)
        outputs[task_id] = value
    return outputs
