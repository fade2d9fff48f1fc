"""Asset events of a Dagster system: materializations and observations of given assets,
read after a position (the watcher's, kept by Interlock), and those pushed by the sensor.

The position is the newest event time seen per asset key (unix milliseconds, Dagster's own
clock), as JSON. Each read asks for events after it, oldest first, at most PAGE per asset.
A first read (no position) starts LOOKBACK_MS before now, as the run watcher does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from interlock.adapters import AssetBatch, AssetEvent, Rejected
from interlock_dagster import queries
from interlock_dagster.client import GraphQLSession
from interlock_dagster.observe import metadata_of

PAGE = 100
LOOKBACK_MS = 10 * 60 * 1000
KINDS = (("assetMaterializations", "materialization"), ("assetObservations", "observation"))
EVENT_KINDS = frozenset(kind for _, kind in KINDS)


def read(s: GraphQLSession, keys: Sequence[str], position: str | None) -> AssetBatch:
    after = _positions(position)
    start = str(int(time.time() * 1000) - LOOKBACK_MS)
    found: list[AssetEvent] = []
    for key in keys:
        since = after.get(key, start)
        events = _events(s, key, since)
        found += events
        if events:
            after[key] = str(max(int(_ms(e)) for e in events))
        else:
            after.setdefault(key, since)
    found.sort(key=lambda e: e.at)
    return AssetBatch(found, json.dumps(after, sort_keys=True))


def _events(s: GraphQLSession, key: str, since: str) -> list[AssetEvent]:
    data = s.query(queries.ASSET_EVENTS, {"assetKey": {"path": key.split("/")},
                                          "after": since, "limit": PAGE})["assetOrError"]
    if data["__typename"] == "AssetNotFoundError":
        return []  # never materialized yet
    if data["__typename"] != "Asset":
        raise Rejected(f"{s.system.name}: {data.get('message')}")
    return [event(s.system.name, key, raw, kind) for field, kind in KINDS
            for raw in data[field] or []]


def event(system: str, key: str, raw: dict[str, Any], kind: str) -> AssetEvent:
    """One Dagster asset event as Interlock takes it in."""
    run = raw.get("runOrError") or {}
    run_id = raw.get("runId") or None
    stamp = str(raw["timestamp"])
    return AssetEvent(system=system, key=key, ref=f"{kind}:{run_id or '-'}:{key}:{stamp}",
                      at=datetime.fromtimestamp(int(stamp) / 1000, tz=UTC),
                      job_id=run.get("jobName"), run_id=run_id,
                      partition=raw.get("partition"),
                      metadata=metadata_of(raw.get("metadataEntries") or []))


def _positions(position: str | None) -> dict[str, str]:
    try:
        value = json.loads(position) if position else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _ms(e: AssetEvent) -> int:
    return int(e.ref.rsplit(":", 1)[1])
