"""Task-instance calls: which tasks failed, their logs, and XCom return values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow_client import client as af

from interlock.states import NodeState
from interlock_airflow.client import AirflowSession, RemoteNotFound
from interlock_airflow.mapping import task_state
from interlock_airflow.runs import ANY

LOG_CAP = 8_000  # characters of log kept per task; the tail, where errors are


def of_runs(s: AirflowSession, dag_ids: Sequence[str],
            run_ids: Sequence[str]) -> list[af.TaskInstanceResponse]:
    """Task instances of many runs in one request (pages of 1000)."""
    api, found, offset = af.TaskInstanceApi(s.api), [], 0
    while True:
        body = af.TaskInstancesBatchBody(dag_ids=sorted(set(dag_ids)),
                                         dag_run_ids=sorted(set(run_ids)),
                                         page_limit=1000, page_offset=offset)
        page = s.call(api.get_task_instances_batch, ANY, ANY, body)
        found += page.task_instances
        offset += len(page.task_instances)
        if not page.task_instances or offset >= (page.total_entries or 0):
            return found


def failed(instances: Sequence[af.TaskInstanceResponse]) -> list[af.TaskInstanceResponse]:
    return [ti for ti in instances
            if task_state(ti.state.value if ti.state else None) is NodeState.FAILED]


def log_text(s: AirflowSession, ti: af.TaskInstanceResponse, *, cap: int = LOG_CAP) -> str:
    """The log of the task's last try, capped to its tail."""
    try:
        resp = s.call(af.TaskInstanceApi(s.api).get_log_without_preload_content, ti.dag_id,
                      ti.dag_run_id, ti.task_id, max(ti.try_number, 1), full_content=True,
                      map_index=ti.map_index, accept="application/json")
    except RemoteNotFound:
        return ""
    text = _log_lines(json.loads(resp.data or b"{}").get("content"))
    return text if len(text) <= cap else "[... log truncated ...]\n" + text[-cap:]


def _log_lines(content: Any) -> str:
    """Airflow 3 logs are structured records; older ones plain text."""
    if isinstance(content, str):
        return content
    lines = []
    for rec in content or []:
        if isinstance(rec, dict):
            level = rec.get("level")
            prefix = f"[{level}] " if level else ""
            lines.append(f"{prefix}{rec.get('event', '')}")
            lines += [str(e) for e in _exception_lines(rec.get("error_detail"))]
        else:
            lines.append(str(rec))
    return "\n".join(lines)


def _exception_lines(detail: Any) -> list[str]:
    if not isinstance(detail, list):
        return []
    return [f"{e.get('exc_type', '')}: {e.get('exc_value', '')}" for e in detail
            if isinstance(e, dict)]


def return_value(s: AirflowSession, dag_id: str, run_id: str, task_id: str) -> Any:
    """The task's XCom `return_value`; None when the task returned nothing."""
    try:
        entry = s.call(af.XComApi(s.api).get_xcom_entry, dag_id, task_id, run_id,
                       "return_value", deserialize=True, stringify=False)
    except RemoteNotFound:
        return None
    value = getattr(entry.actual_instance, "value", None)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
