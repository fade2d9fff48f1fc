"""What adapters may read of the store: runs Interlock observed in foreign systems, and the
expected runs the cron monitor found missed.

The store provides this (`interlock.store.observed`, installed when the store package is
imported); adapters call `observed()` and never build SQL on core tables. The inversion
keeps `interlock.adapters` below the store in the import graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from interlock.errors import InterlockError
from interlock.states import NodeState


@dataclass(frozen=True)
class ObservedRun:
    """A foreign run as Interlock saw it (pushed or polled), mapped to a node state."""

    external_id: str
    state: NodeState
    remote_status: str
    started_at: datetime | None = None
    ended_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ObservedRuns(Protocol):
    def first_run_since(self, system: str, job_id: str, since: datetime) -> ObservedRun | None:
        """The earliest run of `job_id` on `system` that started at or after `since`."""

    def first_missed_since(self, system: str, job_id: str, since: datetime) -> datetime | None:
        """The due time of the earliest expected run since `since` that never came."""


_provider: ObservedRuns | None = None


def provide(reader: ObservedRuns) -> None:
    """Install the store's implementation (done by `interlock.store` on import)."""
    global _provider
    _provider = reader


def observed() -> ObservedRuns:
    if _provider is None:
        raise InterlockError("no store is installed: import interlock.store before polling")
    return _provider
