"""Airflow's own event log (`GET /api/v2/eventLogs`) as foreign audit actions."""

from __future__ import annotations

from datetime import datetime

import airflow_client.client as af

from interlock.adapters import ForeignAction
from interlock_airflow.client import AirflowSession

PAGE = 100


def since(s: AirflowSession, *, after_id: int | None, after_time: datetime | None,
          limit: int) -> list[ForeignAction]:
    """Entries after ``after_id``, oldest first. The API filters by time, not by id, so the
    pages start at the last entry's time and skip what was taken already."""
    api, found = af.EventLogApi(s.api), list[ForeignAction]()
    offset = 0
    while len(found) < limit:
        page = s.call(api.get_event_logs, limit=PAGE, offset=offset,
                      order_by=["event_log_id"], after=after_time)
        entries = page.event_logs
        found += [_action(e) for e in entries if after_id is None or e.event_log_id > after_id]
        offset += len(entries)
        if len(entries) < PAGE:
            break
    return found[:limit]


def _action(entry: af.EventLogResponse) -> ForeignAction:
    parts = [f"dags/{entry.dag_id}"] if entry.dag_id else []
    if entry.run_id:
        parts.append(f"runs/{entry.run_id}")
    if entry.task_id:
        parts.append(f"tasks/{entry.task_id}")
    details = {"event": entry.event, "dag_id": entry.dag_id, "run_id": entry.run_id,
               "task_id": entry.task_id, "try_number": entry.try_number,
               "map_index": entry.map_index, "extra": entry.extra}
    return ForeignAction(id=entry.event_log_id, at=entry.when, actor=entry.owner or "airflow",
                         action=entry.event, target="/".join(parts) or "airflow",
                         details={k: v for k, v in details.items() if v is not None})
