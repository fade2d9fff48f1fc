"""What adapters of registered systems share: finding a system by name, one client
session per system, and polling handles grouped by the system they live on."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from interlock.adapters.contract import Handle, Observation
from interlock.config.systems import System, UnknownSystem, load_systems
from interlock.errors import Rejected, Transient


class Closeable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=Closeable)


def registered(name: str | None, *, kind: str) -> System:
    """The system a node or handle names; Rejected (the node fails) when it is unknown."""
    try:
        return load_systems().get(name or "", kind=kind)
    except UnknownSystem as exc:
        raise Rejected(str(exc)) from None


class SessionPool(Generic[S]):
    """One session per system, made again (the old one closed) when its settings change."""

    def __init__(self, make: Callable[[System], S]):
        self._make = make
        self._sessions: dict[str, tuple[System, S]] = {}
        self._lock = threading.Lock()

    def get(self, system: System) -> S:
        with self._lock:
            cached = self._sessions.get(system.name)
            if cached is None or cached[0] != system:
                if cached is not None:
                    cached[1].close()  # the system's settings changed: its connections go
                self._sessions[system.name] = (system, self._make(system))
            return self._sessions[system.name][1]


def poll_by_system(handles: Sequence[Handle],
                   observe: Callable[[str, list[Handle]], list[Observation]],
                   ) -> list[Observation]:
    """``observe`` once per system; a system that is down is skipped this tick."""
    by_system: dict[str, list[Handle]] = defaultdict(list)
    for handle in handles:
        by_system[handle.system or ""].append(handle)
    found: list[Observation] = []
    for name, group in by_system.items():
        try:
            found += observe(name, group)
        except Transient:
            continue  # the others are still observed
    return found
