"""Airflow assets: events read after a position (`GET /api/v2/assets/events`), and events
created for data made elsewhere (`POST /api/v2/assets/events`), which start the DAGs
scheduled on the asset.

An asset is named in `mappings/datasets.yaml` by its URI or its name. The position is the
newest event time taken in, as JSON. A read asks for the events at or after that time less
OVERLAP (an event committed late with an earlier time is still found; the API orders by
time but not by id, so a page boundary between equal times is covered too); an event read
twice is one update in Interlock (its `ref` is the event's id).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import airflow_client.client as af

from interlock.adapters import AssetBatch, AssetEvent, Rejected
from interlock_airflow.client import AirflowSession

PAGE = 100
MAX_PAGES = 100            # per read, oldest first: a larger backlog is read by later looks
LOOKBACK = timedelta(minutes=10)  # a first read starts this far back, as the run watcher
OVERLAP = timedelta(seconds=30)
KIND = "asset_event"


def read(s: AirflowSession, keys: Sequence[str], position: str | None) -> AssetBatch:
    after_time = _position(position)
    api, wanted = af.AssetApi(s.api), set(keys)
    found: dict[str, AssetEvent] = {}
    newest = after_time
    for page in range(MAX_PAGES):
        events = s.call(api.get_asset_events, limit=PAGE, offset=page * PAGE,
                        order_by=["timestamp"], timestamp_gte=after_time - OVERLAP).asset_events
        for e in events:
            newest = max(newest, e.timestamp)
            key = e.uri if e.uri in wanted else e.name if e.name in wanted else None
            if key is not None:
                found[f"{KIND}:{e.id}"] = _event(s.system.name, key, e)
        if len(events) < PAGE:
            break
    return AssetBatch(sorted(found.values(), key=lambda e: e.at),
                      json.dumps({"time": newest.isoformat()}))


def _event(system: str, key: str, e: af.AssetEventResponse) -> AssetEvent:
    return AssetEvent(system=system, key=key, ref=f"{KIND}:{e.id}", at=e.timestamp,
                      job_id=e.source_dag_id, run_id=e.source_run_id,
                      partition=e.partition_key, metadata=dict(e.extra or {}))


def _position(position: str | None) -> datetime:
    try:
        return datetime.fromisoformat(json.loads(position)["time"]) if position else \
            datetime.now(UTC) - LOOKBACK
    except (ValueError, TypeError, KeyError):
        return datetime.now(UTC) - LOOKBACK


def report(s: AirflowSession, key: str, metadata: dict[str, Any]) -> list[str]:
    """An asset event for ``key`` (URI or name) with ``metadata`` as its extra; returns the
    DAGs scheduled on the asset (the event starts them)."""
    api = af.AssetApi(s.api)
    asset = _asset(s, api, key)
    s.call(api.create_asset_event, af.CreateAssetEventsBody(asset_id=asset.id, extra=metadata))
    return sorted({d.dag_id for d in asset.scheduled_dags})


def _asset(s: AirflowSession, api: af.AssetApi, key: str) -> af.AssetResponse:
    for field in ("uri_pattern", "name_pattern"):
        assets = s.call(api.get_assets, limit=PAGE, **{field: key}).assets
        exact = [a for a in assets if key in (a.uri, a.name)]
        if exact:
            return exact[0]
    raise Rejected(f"{s.system.name} has no asset with the URI or name {key!r}: declare it "
                   "in a DAG (as an outlet or a schedule) or fix mappings/datasets.yaml")
