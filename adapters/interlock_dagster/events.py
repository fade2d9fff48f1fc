"""Run events pushed by the Interlock run-status sensor running inside Dagster, and
finished runs found by listing (the watcher's fallback)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from interlock.adapters import AssetEvent, ForeignEvent, Rejected
from interlock_dagster import assets
from interlock_dagster.mapping import run_state

INTERLOCK_TAGS = ("interlock/run_id", "interlock/node_id", "interlock/key")
MAX_ASSETS = 200  # asset events pushed with one run: more is refused, not cut


def parse(payload: dict[str, Any]) -> ForeignEvent:
    status = _text(payload, "state")
    try:
        state = run_state(status)
    except Exception:
        raise Rejected(f"`state` {status!r} is not a Dagster run status") from None
    tags = payload.get("tags") if isinstance(payload.get("tags"), dict) else {}
    return ForeignEvent(system=_text(payload, "system"), job_id=_text(payload, "job"),
                        external_id=_text(payload, "run_id"), remote_status=status,
                        state=state, run_type=None, started_at=_time(payload.get("start_time")),
                        ended_at=_time(payload.get("end_time")),
                        details=_details(tags or {}), assets=_assets(payload))


def of_run(system: str, run: dict[str, Any]) -> ForeignEvent:
    tags = {t["key"]: t["value"] for t in run.get("tags", [])}
    return ForeignEvent(system=system, job_id=run["jobName"], external_id=run["runId"],
                        remote_status=run["status"], state=run_state(run["status"]),
                        started_at=_time(run.get("startTime")), ended_at=_time(run.get("endTime")),
                        details=_details(tags))


def _text(payload: dict[str, Any], field: str) -> str:
    value = payload.get(field)
    if not isinstance(value, str) or not value:
        raise Rejected(f"`{field}` must be a non-empty string")
    return value


def _time(value: Any) -> datetime | None:
    """Dagster times are unix seconds (floats)."""
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError):
        raise Rejected(f"a time must be unix seconds, not {value!r}") from None


def _details(tags: dict[str, Any]) -> dict[str, Any]:
    """Interlock's own tags at the top (they find the attempt), and every tag of the run
    under `tags`, which a trigger's `inputs:` may map (bounded when stored)."""
    details: dict[str, Any] = {k: v for k, v in tags.items() if k in INTERLOCK_TAGS}
    if tags:
        details["tags"] = {str(k): v for k, v in tags.items()}
    return details


def _assets(payload: dict[str, Any]) -> tuple[AssetEvent, ...]:
    """The materializations and observations the sensor pushed with a finished run, in the
    shape of the GraphQL events (`timestamp` in ms, `metadataEntries`)."""
    raw = payload.get("assets", [])
    if not isinstance(raw, list) or len(raw) > MAX_ASSETS:
        raise Rejected(f"`assets` must be a list of at most {MAX_ASSETS} asset events")
    system, run_id, job = payload["system"], payload["run_id"], payload["job"]
    found = []
    for item in raw:
        if not isinstance(item, dict):
            raise Rejected("each of `assets` must be an object")
        key, stamp, kind = item.get("key"), item.get("timestamp"), item.get("kind")
        entries = item.get("metadataEntries", [])
        partition = item.get("partition")
        if not (isinstance(key, str) and 0 < len(key) <= 500 and isinstance(stamp, str)
                and stamp.isdigit() and len(stamp) <= 16 and kind in assets.EVENT_KINDS
                and isinstance(entries, list)
                and all(isinstance(e, dict) and isinstance(e.get("label"), str)
                        for e in entries)
                and (partition is None or isinstance(partition, str))):
            raise Rejected("an asset event needs `key`, `timestamp` (unix ms as digits), "
                           f"`kind` (one of {sorted(assets.EVENT_KINDS)}), `metadataEntries`")
        found.append(assets.event(system, key, {
            "runId": run_id, "timestamp": stamp, "partition": partition,
            "metadataEntries": entries, "runOrError": {"jobName": job}}, kind))
    return tuple(found)
