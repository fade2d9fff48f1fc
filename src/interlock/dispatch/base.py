"""What carries work between handlers: Celery on Redis, or an in-process loop."""

from __future__ import annotations

from typing import Protocol

from interlock.store.outbox import Work


class Dispatcher(Protocol):
    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        """Hand ``work`` to some worker, now or after ``countdown`` seconds."""
