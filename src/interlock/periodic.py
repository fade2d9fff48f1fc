"""Work the reconciler does every so many seconds, not on every sweep."""

from __future__ import annotations

import time


class Every:
    """Says whether periodic work is due, on the monotonic clock; due at once at first."""

    def __init__(self) -> None:
        self._next = 0.0

    def due(self, seconds: float) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + seconds
        return True
