"""Deep links: where a person clicks to see a span in its own system's UI.

    Airflow 3   {ui}/dags/{dag_id}/runs/{dag_run_id}[/tasks/{task_id}]
    Dagster     {ui}/runs/{run_id}
    script, rpa file:// the attempt's directory, or the robot's log.html (the handle's url)

`{ui}` is the registered system's `ui_url` (default: its `url`). A handle's own `url` is
preferred: the adapter wrote it when it started the job.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from interlock.errors import InterlockError
from interlock.config.systems import load_systems

AIRFLOW = "airflow"
DAGSTER = "dagster"
# The Airflow adapter's error for a failed DAG run ends with the failed task ids
# (`...; failed task(s): load, check`): the first one is where the link points.
_FAILED_TASKS = re.compile(r"failed task\(s\): (?P<names>[^\n]+)$", re.MULTILINE)
_NONE_REPORTED = "none reported"
# Characters RFC 3986 allows in a path segment as they are (Airflow run ids hold `:` and `+`).
_SEGMENT_SAFE = ":@!$&'()*+,;=~"


def segment(text: str) -> str:
    return quote(text, safe=_SEGMENT_SAFE)


def system_ui(name: str | None) -> tuple[str, str] | None:
    """(kind, UI base URL) of a registered system; None if unknown or the file is broken."""
    if not name:
        return None
    try:
        systems = load_systems()
        return (systems.get(name).kind, systems.get(name).ui) if name in systems else None
    except InterlockError:  # a broken systems file must not break a trace
        return None


def airflow_failed_task(error: str | None) -> str | None:
    found = _FAILED_TASKS.search(error or "")
    if found is None or found["names"].strip() == _NONE_REPORTED:
        return None
    return found["names"].split(",")[0].strip() or None


def foreign_run_link(system: str | None, job_id: str, external_id: str, *,
                     task_id: str | None = None) -> str | None:
    """The run's page in its system's UI (Airflow: the task's, when ``task_id`` is given)."""
    found = system_ui(system)
    if found is None:
        return None
    kind, ui = found
    if kind == AIRFLOW:
        return _with_task(f"{ui}/dags/{segment(job_id)}/runs/{segment(external_id)}", task_id)
    if kind == DAGSTER:
        return f"{ui}/runs/{segment(external_id)}"
    return None


def attempt_link(uses: str, handle: dict[str, Any] | None, error: str | None) -> str | None:
    """Where an attempt's job lives: its system's UI, or its local directory."""
    if not handle:
        return None
    data: dict[str, Any] = handle.get("data") or {}
    kind = handle.get("kind") or uses
    if kind == AIRFLOW and data.get("dag_id"):
        url = handle.get("url") or foreign_run_link(handle.get("system"), data["dag_id"],
                                                    handle["external_id"])
        return _with_task(url, airflow_failed_task(error)) if url else None
    if handle.get("url"):
        return str(handle["url"])
    if kind == DAGSTER:
        return foreign_run_link(handle.get("system"), "", handle["external_id"])
    directory = Path(str(data.get("dir") or ""))
    return directory.as_uri() if directory.is_absolute() else None


def _with_task(run_url: str, task_id: str | None) -> str:
    return f"{run_url.rstrip('/')}/tasks/{segment(task_id)}" if task_id else run_url
