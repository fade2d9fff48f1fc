"""Deep links: where a person clicks to see a span in its own system's UI.

The adapter of the span's kind builds them (`Adapter.run_link`, `Adapter.attempt_link`):
Airflow's DAG run or task page, Dagster's run page, a script's attempt directory, a robot's
log.html. The UI is the registered system's `ui_url` (default: its `url`); a handle's own
`url`, written when the job started, is preferred. A link is never worth failing a trace
for: an unknown system or adapter, or a broken systems file, gives no link.
"""

from __future__ import annotations

from typing import Any

from interlock.adapters.contract import Adapter, Handle
from interlock.adapters.registry import default_registry
from interlock.config.systems import load_systems
from interlock.errors import InterlockError


def system_ui(name: str | None) -> tuple[str, str] | None:
    """(kind, UI base URL) of a registered system; None if unknown or the file is broken."""
    if not name:
        return None
    try:
        systems = load_systems()
        return (systems.get(name).kind, systems.get(name).ui) if name in systems else None
    except InterlockError:  # a broken systems file must not break a trace
        return None


def _adapter(kind: str | None) -> Adapter | None:
    try:
        return default_registry().get(kind) if kind else None
    except InterlockError:  # not installed (any more), or broken
        return None


def foreign_run_link(system: str | None, job_id: str, external_id: str, *,
                     task_id: str | None = None) -> str | None:
    """The run's page in its system's UI (the task's, when ``task_id`` is given)."""
    found = system_ui(system)
    adapter = _adapter(found[0]) if found else None
    if found is None or adapter is None:
        return None
    return adapter.run_link(found[1], job_id, external_id, task_id=task_id)


def attempt_link(uses: str, handle: dict[str, Any] | None, error: str | None) -> str | None:
    """Where an attempt's job lives: its system's UI, or its local directory."""
    if not handle:
        return None
    found = Handle(**{**handle, "kind": handle.get("kind") or uses})
    adapter = _adapter(found.kind)
    if adapter is None:
        return found.url
    ui = system_ui(found.system)
    return adapter.attempt_link(found, ui=ui[1] if ui else None, error=error)
