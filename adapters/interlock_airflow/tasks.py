"""Task-instance calls: which tasks failed, their logs, and XCom return values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow_client import client as af

from interlock.adapters import NodeState
from interlock_airflow.client import AirflowSession, RemoteNotFound
from interlock_airflow.mapping import task_state
from interlock_airflow.runs import ANY

LOG_CAP = 8_000  # characters of log kept per task; the tail, where errors are
TRUNCATED = "[... log truncated ...]\n"


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
    text, error_at = _log_lines(json.loads(resp.data or b"{}").get("content"))
    return capped(text, cap, error_at)


def capped(text: str, cap: int, error_at: int | None = None) -> str:
    """At most ``cap`` characters: the tail, unless the task's error is further up (what
    runs after a task fails, such as a lineage listener's retries, can fill the tail);
    then the window that ends shortly after the error."""
    if len(text) <= cap:
        return text
    if error_at is None or error_at >= len(text) - cap:
        return TRUNCATED + text[-cap:]
    end = min(len(text), error_at + cap // 4)
    return TRUNCATED + text[max(0, end - cap):end] + "\n" + TRUNCATED.strip()


def _log_lines(content: Any) -> tuple[str, int | None]:
    """Airflow 3 logs are structured records; older ones plain text. Also where the last
    exception's lines end, if the records carry one."""
    if isinstance(content, str):
        return content, None
    lines: list[str] = []
    size, error_at = 0, None
    for rec in content or []:
        if isinstance(rec, dict):
            level = rec.get("level")
            prefix = f"[{level}] " if level else ""
            errors = [str(e) for e in _exception_lines(rec.get("error_detail"))]
            new = [f"{prefix}{rec.get('event', '')}", *errors]
        else:
            errors, new = [], [str(rec)]
        lines += new
        size += sum(len(line) + 1 for line in new)
        if errors:
            error_at = size
    return "\n".join(lines), error_at


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
