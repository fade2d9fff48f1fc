"""Dagster run-status sensors that push run completions to Interlock, signed, with the
asset materializations and observations each run made (Interlock's data-aware triggers),
and a success hook (`interlock_push_assets`) that pushes a step's materializations as soon
as the step succeeds.

Runs inside Dagster's environment (Interlock is not installed there): standard library
plus `dagster`, and `_interlock_signing.py` beside this file. Add them to a code location's
definitions:

    from interlock_sensor import interlock_sensors
    defs = dg.Definitions(jobs=[...], sensors=interlock_sensors())

Configured by environment variables of the Dagster daemon (or arguments):
``INTERLOCK_EVENTS_URL`` (e.g. ``http://interlock:8000/api/v1/events/dagster``; unset ->
no sensors), ``INTERLOCK_EVENTS_SECRET`` (the HMAC key of this system in Interlock's
systems file) and ``INTERLOCK_SYSTEM`` (e.g. ``dagster/analytics``). The sensors watch
every code location, start running by default, and are evaluated by the daemon about
once a second. A post that fails is not retried (the sensor's cursor moves on): Interlock's
polling and its watcher cover a lost event.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any

import dagster as dg

# A verbatim copy of interlock.adapters.signing, beside this file (this folder is on
# sys.path, as for `from interlock_sensor import ...`). tests/test_signing_copies.py.
from _interlock_signing import sign

STATUSES = {"SUCCESS": dg.DagsterRunStatus.SUCCESS, "FAILURE": dg.DagsterRunStatus.FAILURE,
            "CANCELED": dg.DagsterRunStatus.CANCELED}
TIMEOUT_S = 3.0


def post(url: str, secret: str, event: dict[str, Any]) -> int:
    body = json.dumps(event, sort_keys=True).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", **sign(secret, body)})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
        return int(response.status)


def _event(context: dg.RunStatusSensorContext, system: str, status: str) -> dict[str, Any]:
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    return {"system": system, "kind": "run", "state": status, "job": run.job_name,
            "run_id": run.run_id, "tags": dict(run.tags),
            "start_time": record.start_time if record else None,
            "end_time": record.end_time if record else None, "emitted_at": time.time(),
            "assets": _assets(context.instance, run.run_id)}


# What a run wrote, in the shape of Dagster's GraphQL events (the watcher reads those, and
# the same event must be the same update whichever way it arrives).
ASSET_EVENTS = ((dg.DagsterEventType.ASSET_MATERIALIZATION, "materialization"),
                (dg.DagsterEventType.ASSET_OBSERVATION, "observation"))
# At most what Interlock takes with one event (interlock_dagster.events.MAX_ASSETS: keep them
# equal); a run that wrote more pushes its first ones, the watcher reads the mapped rest.
MAX_ASSETS = 200


def _assets(instance: dg.DagsterInstance, run_id: str,
            step_key: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for event_type, kind in ASSET_EVENTS:
        for entry in _entries(instance, run_id, event_type):
            if step_key is not None and entry.step_key != step_key:
                continue
            data = entry.dagster_event.event_specific_data
            asset = data.materialization if kind == "materialization" else data.asset_observation
            found.append({"kind": kind, "key": "/".join(asset.asset_key.path),
                          "timestamp": str(int(entry.timestamp * 1000)),
                          "partition": asset.partition,
                          "metadataEntries": [_entry(label, value.value)
                                              for label, value in asset.metadata.items()]})
    return found[:MAX_ASSETS]


def _entries(instance: dg.DagsterInstance, run_id: str,
             event_type: dg.DagsterEventType) -> Any:
    """The run's events of one type, page by page (a step's may come after many others)."""
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=event_type,
                                            limit=MAX_ASSETS)
        for record in page.records:
            yield record.event_log_entry
        if not page.has_more:
            return
        cursor = page.cursor


def _entry(label: str, value: Any) -> dict[str, Any]:
    """A metadata value as GraphQL's typed entry."""
    if isinstance(value, bool):
        return {"label": label, "boolValue": value}
    if isinstance(value, int):
        return {"label": label, "intValue": value}
    if isinstance(value, float):
        return {"label": label, "floatValue": value}
    if isinstance(value, (dict, list)):
        return {"label": label, "jsonString": json.dumps(value)}
    return {"label": label, "text": str(value)[:2000]}


def interlock_sensors(url: str | None = None, secret: str | None = None,
                      system: str | None = None) -> list[dg.SensorDefinition]:
    """One run-status sensor per terminal status; none when no URL is configured."""
    url = url or os.environ.get("INTERLOCK_EVENTS_URL")
    secret = secret or os.environ.get("INTERLOCK_EVENTS_SECRET", "")
    system = system or os.environ.get("INTERLOCK_SYSTEM", "dagster/default")
    if not url:
        return []
    return [_sensor(url, secret, system, name, status) for name, status in STATUSES.items()]


def _sensor(url: str, secret: str, system: str, name: str,
            status: dg.DagsterRunStatus) -> dg.SensorDefinition:
    @dg.run_status_sensor(run_status=status, name=f"interlock_push_{name.lower()}",
                          monitor_all_code_locations=True, minimum_interval_seconds=1,
                          default_status=dg.DefaultSensorStatus.RUNNING)
    def push(context: dg.RunStatusSensorContext) -> None:
        try:
            post(url, secret, _event(context, system, name))
        except OSError as exc:  # Interlock polls as a fallback: never fail the sensor
            context.log.warning(f"interlock: event for run {context.dagster_run.run_id} "
                                f"not delivered: {exc}")
    return push


@dg.success_hook(name="interlock_push_assets")
def interlock_push_assets(context: dg.HookContext) -> None:
    """Push what a step materialized as soon as the step succeeds, from the step's own
    process: the run-status sensors push only once the whole run has ended, and Dagster's
    sensor daemon loops at most every 5 s. Attach it to asset jobs
    (`define_asset_job(..., hooks={interlock_push_assets})`); the sensors still push the
    finished run, and Interlock keeps one update per materialization."""
    url = os.environ.get("INTERLOCK_EVENTS_URL")
    if not url:
        return
    secret = os.environ.get("INTERLOCK_EVENTS_SECRET", "")
    system = os.environ.get("INTERLOCK_SYSTEM", "dagster/default")
    assets = _assets(context.instance, context.run_id, context.step_key)
    if not assets:
        return
    run = context.instance.get_run_by_id(context.run_id)
    event = {"system": system, "kind": "run", "state": "STARTED", "job": context.job_name,
             "run_id": context.run_id, "tags": dict(run.tags) if run else {},
             "start_time": None, "end_time": None, "emitted_at": time.time(),
             "assets": assets}
    try:
        post(url, secret, event)
    except OSError as exc:  # the sensors and Interlock's watcher cover a lost push
        context.log.warning(f"interlock: assets of step {context.step_key} not delivered: "
                            f"{exc}")
