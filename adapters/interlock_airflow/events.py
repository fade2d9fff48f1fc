"""Events pushed by the Interlock listener plugin running inside Airflow.

The payload is documented in `airflow_plugin/README.md`; only what Interlock acts on is
read here. A malformed event is `Rejected` with the field that is wrong.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow_client import client as af

from interlock.adapters import ForeignEvent, Rejected
from interlock_airflow.mapping import dag_run_state, task_state

KINDS = ("dag_run", "task_instance")


def parse(payload: dict[str, Any]) -> ForeignEvent:
    kind = _text(payload, "kind")
    if kind not in KINDS:
        raise Rejected(f"`kind` must be one of {', '.join(KINDS)}, not {kind!r}")
    about_run = kind == "dag_run"
    status = _text(payload, "state")
    try:
        state = dag_run_state(status) if about_run else task_state(status)
    except Exception:
        raise Rejected(f"`state` {status!r} is not an Airflow {kind} state") from None
    details = {k: payload.get(k) for k in ("task_id", "map_index", "try_number", "error",
                                            "event_id", "logical_date") if payload.get(k)}
    conf = payload.get("conf")
    if isinstance(conf, dict) and conf:
        details["conf"] = conf  # a trigger's `inputs:` may map it (bounded when stored)
        if isinstance(conf.get("interlock"), dict):
            details["interlock"] = conf["interlock"]
    return ForeignEvent(
        system=_text(payload, "system"), job_id=_text(payload, "dag_id"),
        external_id=_text(payload, "run_id"), remote_status=status, state=state,
        about_run=about_run, run_type=payload.get("run_type") or None,
        started_at=_time(payload, "start_date"), ended_at=_time(payload, "end_date"),
        details=details)


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise Rejected(f"`{field}` must be a non-empty string")
    return value


def _time(payload: dict[str, Any], field: str) -> datetime | None:
    value = payload.get(field)
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise Rejected(f"`{field}` is not an ISO 8601 time: {value!r}") from None


def of_run(system: str, run: af.DAGRunResponse) -> ForeignEvent:
    """A finished DAG run seen by polling, as the listener would have reported it."""
    details: dict[str, Any] = {}
    if isinstance(run.conf, dict) and run.conf:
        details["conf"] = run.conf
        if isinstance(run.conf.get("interlock"), dict):
            details["interlock"] = run.conf["interlock"]
    return ForeignEvent(system=system, job_id=run.dag_id, external_id=run.dag_run_id,
                        remote_status=run.state.value, state=dag_run_state(run.state.value),
                        run_type=run.run_type.value, started_at=run.start_date,
                        ended_at=run.end_date, details=details)
