"""What a system offers: its DAGs, their tasks, schedules and the assets they touch."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from airflow_client import client as af

from interlock.adapters import RemoteJob
from interlock_airflow.client import AirflowSession

PAGE = 100


def dags(s: AirflowSession) -> list[RemoteJob]:
    """One RemoteJob per DAG; `extra` has schedule, paused, tasks (with downstream ids),
    and the asset URIs each task reads (inlets) and writes (outlets)."""
    assets = _assets_by_task(s)
    found = []
    for dag in _all_dags(s):
        dag_tasks = [_task(dag.dag_id, t, assets)
                     for t in s.call(af.TaskApi(s.api).get_tasks, dag.dag_id).tasks]
        found.append(RemoteJob(
            system=s.system.name, job_id=dag.dag_id, description=dag.description or "",
            extra={"schedule": dag.timetable_summary, "paused": dag.is_paused,
                   "tags": sorted(t.name for t in dag.tags), "fileloc": dag.relative_fileloc,
                   "tasks": {t.pop("task_id"): t for t in dag_tasks},
                   "scheduled_on_assets": sorted(assets["schedule", dag.dag_id, ""]),
                   "node": _node(s, dag.dag_id, dag_tasks)}))
    return found


def _node(s: AirflowSession, dag_id: str, dag_tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """A flow node that runs this DAG, with the datasets its tasks read and write."""
    node: dict[str, Any] = {"uses": "airflow", "with": {"system": s.system.name,
                                                        "dag_id": dag_id}}
    for key, field in (("consumes", "inlets"), ("produces", "outlets")):
        uris = sorted({uri for t in dag_tasks for uri in t[field]})
        if uris:
            node[key] = [dataset_of(uri) for uri in uris]
    return node


def dataset_of(uri: str) -> dict[str, str]:
    """An asset URI as an OpenLineage dataset: `postgres://risk/public.hits` ->
    namespace `postgres://risk`, name `public.hits`."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return {"namespace": "airflow", "name": uri}
    authority, _, path = rest.partition("/")
    return {"namespace": f"{scheme}://{authority}", "name": path or authority}


def _task(dag_id: str, task: af.TaskResponse,
          assets: dict[tuple[str, str, str], set[str]]) -> dict[str, Any]:
    task_id = task.task_id or ""
    return {"task_id": task_id, "operator": task.operator_name,
            "downstream": sorted(task.downstream_task_ids or []),
            "inlets": sorted(assets["in", dag_id, task_id]),
            "outlets": sorted(assets["out", dag_id, task_id])}


def _all_dags(s: AirflowSession) -> list[af.DAGResponse]:
    api, found = af.DAGApi(s.api), list[af.DAGResponse]()
    while True:
        page = s.call(api.get_dags, limit=PAGE, offset=len(found))
        found += page.dags
        if not page.dags or len(found) >= page.total_entries:
            return found


def _assets_by_task(s: AirflowSession) -> dict[tuple[str, str, str], set[str]]:
    """(in|out|schedule, dag id, task id) -> asset URIs."""
    api, index, offset = af.AssetApi(s.api), defaultdict(set), 0
    while True:
        page = s.call(api.get_assets, limit=PAGE, offset=offset)
        for asset in page.assets:
            for ref in asset.consuming_tasks:
                index["in", ref.dag_id, ref.task_id].add(asset.uri)
            for out in asset.producing_tasks:
                index["out", out.dag_id, out.task_id].add(asset.uri)
            for sref in asset.scheduled_dags:
                index["schedule", sref.dag_id, ""].add(asset.uri)
        offset += len(page.assets)
        if not page.assets or offset >= page.total_entries:
            return index
