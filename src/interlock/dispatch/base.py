"""What carries work between handlers: Celery on Redis, or an in-process loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from interlock.store.outbox import Work


@dataclass(frozen=True)
class PollBatch:
    """In-flight attempts of one adapter kind, polled with one `Adapter.poll` call."""

    kind: str
    attempt_ids: list[int]


class Dispatcher(Protocol):
    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        """Hand ``work`` to some worker, now or after ``countdown`` seconds."""

    def send_polls(self, batch: PollBatch) -> None:
        """Hand a batch of polls to some worker."""
