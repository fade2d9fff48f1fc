"""Reading runs: status for many runs in one request; outputs, failures, logs per run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from interlock.adapters import Handle, NodeState, Observation, Rejected
from interlock_dagster import queries
from interlock_dagster.client import GraphQLSession
from interlock_dagster.mapping import run_state

KEY_TAG = "interlock/key"    # the attempt's idempotency key: how a launch is found again
PAGE = 1000
LOG_CAP = 8_000
JSON_TEXT_MAX = 2_000  # an undecodable JSON metadata value, kept as text


def runs(s: GraphQLSession, run_filter: dict[str, Any]) -> list[dict[str, Any]]:
    data = s.query(queries.RUNS, {"filter": run_filter, "limit": PAGE})["runsOrError"]
    if data["__typename"] != "Runs":
        raise Rejected(f"{s.system.name}: {data.get('message')}")
    return list(data["results"])


def run_with_key(s: GraphQLSession, key: str) -> dict[str, Any] | None:
    found = runs(s, {"tags": [{"key": KEY_TAG, "value": key}]})
    return found[0] if found else None


def observe(s: GraphQLSession, handles: Sequence[Handle]) -> list[Observation]:
    """One `runsOrError` request for every handle of this system."""
    by_id = {r["runId"]: r for r in runs(s, {"runIds": [h.external_id for h in handles]})}
    return [_observation(s, h, by_id.get(h.external_id)) for h in handles]


def _observation(s: GraphQLSession, handle: Handle, run: dict[str, Any] | None) -> Observation:
    if run is None:
        return Observation(handle=handle, state=NodeState.LOST, remote_status="missing",
                           error=f"Dagster run {handle.external_id} no longer exists on "
                                 f"{s.system.name}")
    state, status = run_state(run["status"]), run["status"]
    if state is NodeState.SUCCEEDED:
        return Observation(handle=handle, state=state, remote_status=status,
                           outputs=outputs(events(s, handle.external_id)))
    if state is NodeState.FAILED:
        evs = events(s, handle.external_id)
        return Observation(handle=handle, state=state, remote_status=status,
                           error=f"Dagster run {run['runId']} of {run['jobName']} failed on "
                                 f"{s.system.name}; failed step(s): {failures(evs)}",
                           log_excerpt=log_text(evs, cap=2_000))
    return Observation(handle=handle, state=state, remote_status=status)


def events(s: GraphQLSession, run_id: str) -> list[dict[str, Any]]:
    found, cursor = [], None
    while True:
        data = s.query(queries.EVENTS, {"runId": run_id, "afterCursor": cursor,
                                        "limit": 1000})["logsForRun"]
        if data["__typename"] != "EventConnection":
            raise Rejected(f"{s.system.name}: {data.get('message')}")
        found += data["events"]
        cursor = data["cursor"]
        if not data["hasMore"]:
            return found


def outputs(evs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Step output metadata under `<step>.<output>` and merged at the top; asset
    materializations' metadata under `materializations.<asset key>`."""
    found: dict[str, Any] = {}
    assets: dict[str, Any] = {}
    for ev in evs:
        if ev["__typename"] == "ExecutionStepOutputEvent":
            meta = metadata_of(ev["metadataEntries"])
            found.update(meta)
            found[f"{ev['stepKey']}.{ev['outputName']}"] = meta
        elif ev["__typename"] == "MaterializationEvent":
            assets["/".join(ev["assetKey"]["path"])] = metadata_of(ev["metadataEntries"])
    if assets:
        found["materializations"] = assets
    return found


def metadata_of(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for entry in entries:
        for field in ("floatValue", "intValue", "text", "boolValue"):
            if field in entry:
                values[entry["label"]] = entry[field]
        if "jsonString" in entry:
            values[entry["label"]] = _json(entry["jsonString"])
    return values


def failures(evs: Sequence[dict[str, Any]]) -> str:
    steps = [f"{ev['stepKey']}: {_cause(ev['error'])}" for ev in evs
             if ev["__typename"] == "ExecutionStepFailureEvent"]
    return "; ".join(steps) or "none reported"


def _cause(error: dict[str, Any]) -> str:
    """The user's exception is the cause; the top level is Dagster's wrapper."""
    cause = error.get("cause") or error
    return str(cause.get("message", "")).strip()


def log_text(evs: Sequence[dict[str, Any]], *, cap: int = LOG_CAP) -> str:
    """Errors first, then the whole event log; capped."""
    errors = [f"[ERROR] {ev.get('stepKey') or 'run'}: {ev['message']}"
              + (f" {_cause(ev['error'])}" if ev.get("error") else "")
              for ev in evs if ev.get("level") == "ERROR"]
    lines = [f"[{ev.get('level', '')}] {ev.get('stepKey') or '-'}: {ev.get('message', '')}"
             for ev in evs]
    text = "\n".join([*errors, "----- event log -----", *lines])
    return text if len(text) <= cap else text[:cap] + "\n[... truncated ...]"


def _json(text: Any) -> Any:
    """A JSON metadata value; what does not decode (or nests too deep) stays its text."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return str(text)[:JSON_TEXT_MAX]
