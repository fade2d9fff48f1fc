"""Deep links into Airflow 3's UI: `{ui}/dags/{dag_id}/runs/{dag_run_id}[/tasks/{task_id}]`.

An attempt's link points at its first failed task, read back from the error `observe`
writes for a failed DAG run (`...; failed task(s): load, check`).
"""

from __future__ import annotations

import re

from interlock.adapters.links import segment

FAILED_TASKS = "failed task(s)"  # observe.py's error names the failed tasks after this
NONE_REPORTED = "none reported"
_FAILED_TASKS = re.compile(re.escape(FAILED_TASKS) + r": (?P<names>[^\n]+)$", re.MULTILINE)


def run_url(ui: str, dag_id: str, run_id: str, task_id: str | None = None) -> str:
    url = f"{ui.rstrip('/')}/dags/{segment(dag_id)}/runs/{segment(run_id)}"
    return with_task(url, task_id)


def with_task(run_url: str, task_id: str | None) -> str:
    return f"{run_url.rstrip('/')}/tasks/{segment(task_id)}" if task_id else run_url


def failed_task(error: str | None) -> str | None:
    """The first failed task an attempt's error names, if any."""
    found = _FAILED_TASKS.search(error or "")
    if found is None or found["names"].strip() == NONE_REPORTED:
        return None
    return found["names"].split(",")[0].strip() or None
