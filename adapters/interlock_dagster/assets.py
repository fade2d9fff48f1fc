"""Asset events of a Dagster system: materializations and observations of given assets,
read after a position (the watcher's, kept by Interlock), and those pushed by the sensor.

The position is, per asset key, the newest event time taken in (unix milliseconds,
Dagster's clock), as JSON. Dagster lists an asset's events newest first only, so a read
walks back page by page from now to the position, and reads OVERLAP_MS before it again:
an event committed late with an earlier time (concurrent runs) is still found, and an
event read twice is one update in Interlock (its `ref` is unique). A first read (no
position) starts LOOKBACK_MS before now, as the run watcher does.
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
MAX_PAGES = 100              # per asset, kind and look: a larger backlog loses its oldest
LOOKBACK_MS = 10 * 60 * 1000
OVERLAP_MS = 30 * 1000
KINDS = (("assetMaterializations", "materialization"), ("assetObservations", "observation"))
EVENT_KINDS = frozenset(kind for _, kind in KINDS)


def read(s: GraphQLSession, keys: Sequence[str], position: str | None) -> AssetBatch:
    known = _positions(position)
    start = int(time.time() * 1000) - LOOKBACK_MS
    found: dict[str, AssetEvent] = {}
    after: dict[str, int] = {}
    for key in keys:  # keys no longer mapped are dropped from the position
        since = known.get(key, start)
        newest = since
        for field, kind in KINDS:
            for event in _events(s, key, field, kind, since - OVERLAP_MS if key in known
                                 else since):
                found[event.ref] = event
                newest = max(newest, _ms(event))
        after[key] = newest
    events = sorted(found.values(), key=lambda e: e.at)
    return AssetBatch(events, json.dumps(after, sort_keys=True))


def _events(s: GraphQLSession, key: str, field: str, kind: str,
            since: int) -> list[AssetEvent]:
    """Every event of one kind after ``since``, walking back a page at a time."""
    document = queries.ASSET_EVENTS.replace("{field}", field)
    found: list[AssetEvent] = []
    before: int | None = None
    for _ in range(MAX_PAGES):
        data = s.query(document, {"assetKey": {"path": key.split("/")}, "after": str(since),
                                  "before": None if before is None else str(before),
                                  "limit": PAGE})["assetOrError"]
        if data["__typename"] == "AssetNotFoundError":
            return []  # never materialized yet
        if data["__typename"] != "Asset":
            raise Rejected(f"{s.system.name}: {data.get('message')}")
        page = [event(s.system.name, key, raw, kind) for raw in data["events"] or []]
        found += page
        oldest = min((_ms(e) for e in page), default=None)
        if len(page) < PAGE or oldest is None or (before is not None and oldest + 1 >= before):
            break
        before = oldest + 1  # the oldest millisecond again: events sharing it are kept
    return found


def event(system: str, key: str, raw: dict[str, Any], kind: str) -> AssetEvent:
    """One Dagster asset event as Interlock takes it in; the same event read by the watcher
    or pushed by the sensor or the hook has the same ref."""
    run = raw.get("runOrError") or {}
    run_id = raw.get("runId") or None
    stamp, partition = str(raw["timestamp"]), raw.get("partition")
    return AssetEvent(system=system, key=key,
                      ref=f"{kind}:{run_id or '-'}:{key}:{partition or '-'}:{stamp}",
                      at=datetime.fromtimestamp(int(stamp) / 1000, tz=UTC),
                      job_id=run.get("jobName"), run_id=run_id, partition=partition,
                      metadata=metadata_of(raw.get("metadataEntries") or []))


def _positions(position: str | None) -> dict[str, int]:
    try:
        value = json.loads(position) if position else {}
        return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}
    except (ValueError, TypeError, AttributeError):
        return {}


def _ms(e: AssetEvent) -> int:
    return int(e.at.timestamp() * 1000 + 0.5)
