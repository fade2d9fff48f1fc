"""Keep going with the next piece of work in the same worker, instead of a broker round trip.

When a handler finishes a node and the planner submits the next one, the worker that is
already here runs that submit itself (up to ``limit`` items per task), and hands only the
rest to the broker. Nothing is less durable for it: every item is still an outbox row until
the transaction that completes it, so a worker that dies mid-chain loses nothing.
"""

from __future__ import annotations

from collections import deque

from interlock.dispatch.handlers import handle, handle_poll_batch
from interlock.store.outbox import Dispatcher, PollBatch, Work

CHAIN_LIMIT = 32  # items one task may run before handing the rest to other workers


class ChainingDispatcher:
    def __init__(self, inner: Dispatcher, limit: int = CHAIN_LIMIT):
        self.inner, self.limit = inner, limit
        self.local: deque[Work] = deque()
        self.ran = 0

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        # Keep one immediate item to run next; fan-out and delayed work go to the broker.
        if countdown == 0 and not self.local and self.ran < self.limit:
            self.local.append(work)
        else:
            self.inner.send(work, countdown=countdown)

    def send_polls(self, batch: PollBatch) -> None:
        self.inner.send_polls(batch)

    def run(self, first: Work | PollBatch) -> None:
        """Handle ``first``, then whatever it kept local, one after another."""
        if isinstance(first, PollBatch):
            handle_poll_batch(first.attempt_ids, dispatcher=self)
        else:
            handle(first, dispatcher=self)
        while self.local:
            self.ran += 1
            handle(self.local.popleft(), dispatcher=self)
