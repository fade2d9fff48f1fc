"""Observing foreign runs without push: list what finished, as a fallback for lost events.

Every `INTERLOCK_WATCH_SECONDS` the reconciler asks each system that some flow's `after:`
trigger names for the runs that finished since it last looked, and feeds them through the
same path as pushed events (`interlock.events.intake.apply`): external runs are recorded and
`after:` triggers fire. Both paths are idempotent (a unique external run and a unique
trigger firing), so push and watch, or several workers watching, start a flow once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from interlock import clock
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.config.env import settings
from interlock.config.systems import load_systems
from interlock.dispatch.periodic import Every
from interlock.errors import AdapterError, InterlockError
from interlock.events import intake
from interlock.store.db import session_scope
from interlock.store.flows import list_flows, load_flow_of
from interlock.store.outbox import Dispatcher

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
