"""Dashboards: runs by system, state and window; per-system and per-flow statistics.

Key contracts:
- Everything is read from the store; no foreign system is called.
- Windows are `[since, until)` on `created_at` (:mod:`.window`); aggregates default to the
  last 24 hours, the runs listing to no bound.
- Pages are keysets behind opaque cursors (:mod:`interlock.store.cursor`): stable while rows arrive.
- Percentiles have one door, :func:`.percentiles.distributions`: SQL on PostgreSQL, the same
  arithmetic in Python on SQLite.
"""

from interlock.dashboards.flows import flow_stats
from interlock.dashboards.runs import RunQuery, list_runs
from interlock.dashboards.systems import system_stats
from interlock.dashboards.window import Window, WindowError, bounded_window, open_window

__all__ = ["RunQuery", "Window", "WindowError", "bounded_window", "flow_stats", "list_runs",
           "open_window", "system_stats"]
