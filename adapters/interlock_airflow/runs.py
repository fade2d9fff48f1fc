"""DAG-run calls: trigger (idempotent on the run id), clear, look up, list in one request."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from airflow_client import client as af

from interlock.adapters import Rejected
from interlock_airflow.client import AirflowSession, RemoteNotFound

PAGE = 100  # the API's largest page
ANY = "~"  # Airflow's wildcard for a path parameter: "every DAG" or "every run"


class AlreadyExists(Exception):
    pass


def trigger(s: AirflowSession, dag_id: str, run_id: str, conf: dict[str, Any]) -> af.DAGRunResponse:
    """Trigger with our run id; a 409 means this key already made its run: return that one."""
    body = af.TriggerDAGRunPostBody(dag_run_id=run_id, logical_date=None, conf=conf)
    try:
        return s.call(af.DagRunApi(s.api).trigger_dag_run, dag_id, body)
    except RemoteNotFound:
        raise unknown_dag(s, dag_id) from None
    except Rejected as exc:
        if " 409:" not in str(exc):
            raise
    return get(s, dag_id, run_id)


def get(s: AirflowSession, dag_id: str, run_id: str) -> af.DAGRunResponse:
    return s.call(af.DagRunApi(s.api).get_dag_run, dag_id, run_id)


def unpause(s: AirflowSession, dag_id: str) -> None:
    try:
        s.call(af.DAGApi(s.api).patch_dag, dag_id, af.DAGPatchBody(is_paused=False),
               update_mask=["is_paused"])
    except RemoteNotFound:
        raise unknown_dag(s, dag_id) from None


def clear_failed(s: AirflowSession, dag_id: str, run_id: str) -> None:
    """Airflow's own retry: clear only the failed tasks of the run (not a dry run)."""
    body = af.ClearTaskInstancesBody(dag_run_id=run_id, dry_run=False, only_failed=True,
                                     reset_dag_runs=True)
    s.call(af.TaskInstanceApi(s.api).post_clear_task_instances, dag_id, body)


def mark_failed(s: AirflowSession, dag_id: str, run_id: str) -> None:
    body = af.DAGRunPatchBody(state=af.DagRunMutableStates.FAILED,
                              note="cancelled by Interlock")
    s.call(af.DagRunApi(s.api).patch_dag_run, dag_id, run_id, body)


def list_since(s: AirflowSession, dag_ids: Iterable[str],
               since: datetime) -> dict[tuple[str, str], af.DAGRunResponse]:
    """Every run of these DAGs queued at or after ``since``: one request per page of 100."""
    api, found, offset = af.DagRunApi(s.api), {}, 0
    while True:
        body = af.DAGRunsBatchBody(dag_ids=sorted(set(dag_ids)), page_limit=PAGE,
                                   page_offset=offset, order_by="run_after",
                                   run_after_gte=since - timedelta(seconds=1))
        page = s.call(api.get_list_dag_runs_batch, ANY, body)
        for run in page.dag_runs:
            found[(run.dag_id, run.dag_run_id)] = run
        offset += len(page.dag_runs)
        if not page.dag_runs or offset >= (page.total_entries or 0):
            return found


def finished_since(s: AirflowSession, since: datetime) -> list[af.DAGRunResponse]:
    """Every DAG run of the system that ended at or after ``since`` (pages of 100)."""
    api, found = af.DagRunApi(s.api), list[af.DAGRunResponse]()
    while True:
        body = af.DAGRunsBatchBody(end_date_gte=since, page_limit=PAGE, page_offset=len(found),
                                   order_by="end_date",
                                   states=[af.DagRunState.SUCCESS, af.DagRunState.FAILED])
        page = s.call(api.get_list_dag_runs_batch, ANY, body)
        found += page.dag_runs
        if not page.dag_runs or len(found) >= (page.total_entries or 0):
            return found


def unknown_dag(s: AirflowSession, dag_id: str) -> Rejected:
    return Rejected(f"DAG {dag_id!r} does not exist on {s.system.name} ({s.system.base_url}); "
                    "check `dag_id`, or that the DAG file parses in Airflow")
