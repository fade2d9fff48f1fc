"""Observing foreign systems without push: a fallback for lost events.

Every `INTERLOCK_WATCH_SECONDS` the reconciler

- asks each system that some flow's `after:` trigger names for the runs that finished
  since it last looked, and feeds them through the same path as pushed events
  (`interlock.events.intake.apply`): external runs are recorded and `after:` triggers fire;
- reads the asset events (Dagster materializations, Airflow asset events) of the assets
  `mappings/datasets.yaml` maps on each system, after the position it reached last time,
  and takes them in (`interlock.events.assets`). The position is kept in the store and
  moved in the transaction that takes the events in: a restart loses and repeats nothing.

Every path is idempotent (a unique external run, a unique dataset update, a unique trigger
firing), so push and watch, or several workers watching, start a flow once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from interlock import clock
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.config.dataset_map import keys_of, mapped_systems
from interlock.config.env import settings
from interlock.config.systems import load_systems
from interlock.dispatch.periodic import Every
from interlock.errors import AdapterError, InterlockError
from interlock.events import assets, intake
from interlock.store import positions
from interlock.store.db import session_scope
from interlock.store.flows import list_flows, load_flow_of
from interlock.store.outbox import Dispatcher
from interlock.triggers.firing import send_fired

log = logging.getLogger(__name__)
LOOKBACK = timedelta(minutes=10)  # how far back a new watcher looks
OVERLAP = timedelta(seconds=30)   # each look starts this much before the last: late end_dates
ORIGIN = "watch"


def watched_systems() -> set[str]:
    """Systems named by an `after:` trigger of a flow's newest revision."""
    with session_scope() as session:
        flows = [load_flow_of(r) for r in list_flows(session)]
    return {t.after.system for f in flows for t in f.triggers
            if t.after is not None and t.after.system}


class Watcher:
    """Lists finished runs of every system an `after:` trigger names, every
    INTERLOCK_WATCH_SECONDS, and takes them in as if they had been pushed."""

    name = "watcher"

    def __init__(self, registry: AdapterRegistry | None = None):
        self.registry = registry or default_registry()
        self._since: dict[str, datetime] = {}
        self._every = Every()

    def maybe_tick(self, dispatcher: Dispatcher) -> int:
        if not self._every.due(settings().watch_s):
            return 0
        return self.tick(dispatcher)

    def tick(self, dispatcher: Dispatcher) -> int:
        """One look at every watched system; returns how many finished runs it saw."""
        seen = 0
        systems = load_systems()
        for name in sorted(watched_systems()):
            if name not in systems:
                continue
            seen += self._look(systems.get(name).kind, name, dispatcher)
        for name in sorted(mapped_systems()):
            if name in systems:
                seen += self._look_assets(systems.get(name).kind, name, dispatcher)
        return seen

    def _look(self, kind: str, name: str, dispatcher: Dispatcher) -> int:
        started = clock.now()
        since = self._since.get(name, started - LOOKBACK)
        try:
            events = self.registry.get(kind).recent_runs(name, since)
        except (AdapterError, UnknownAdapter, InterlockError) as exc:
            log.warning("watching %s failed, next look retries: %s", name, exc)
            return 0
        for event in events:
            intake.apply(kind, event, dispatcher=dispatcher, origin=ORIGIN)
        self._since[name] = started - OVERLAP
        return len(events)

    def _look_assets(self, kind: str, name: str, dispatcher: Dispatcher) -> int:
        key = f"{name}#assets"
        with session_scope() as session:
            position = positions.get(session, key)
        try:
            batch = self.registry.get(kind).asset_events(name, keys_of(name), position)
        except (AdapterError, UnknownAdapter, InterlockError) as exc:
            log.warning("reading the asset events of %s failed, next look retries: %s",
                        name, exc)
            return 0
        with session_scope() as session:
            fired = assets.take_in(session, batch.events, origin=ORIGIN)
            if batch.position is not None and batch.position != position:
                positions.put(session, key, batch.position)
        send_fired(dispatcher, fired)
        return len(batch.events)
