"""One entry point per kind of work, shared by the Celery tasks and the embedded loop."""

from __future__ import annotations

import logging

from interlock.dispatch import datasets, executor
from interlock.dispatch.controller import advance
from interlock.errors import Transient
from interlock.store.outbox import Dispatcher, Work
from interlock.store.tables import TaskKind
from interlock.telemetry import sender

log = logging.getLogger(__name__)


def handle(work: Work, *, dispatcher: Dispatcher) -> None:
    match work.kind:
        case TaskKind.ADVANCE:
            advance(work.run_id, dispatcher=dispatcher)
        case TaskKind.EXECUTE:
            assert work.attempt_id is not None
            executor.execute(work.attempt_id, dispatcher=dispatcher)
        case TaskKind.CANCEL:
            assert work.attempt_id is not None
            executor.cancel(work.attempt_id)
        case TaskKind.EXPORT:
            try:
                sender.send(work.run_id)
            except Transient as exc:  # the outbox row stays: sent again after its lease
                log.warning("exporting the spans of run %s failed, will retry: %s",
                            work.run_id, exc)
        case TaskKind.REPORT:
            assert work.attempt_id is not None
            try:
                datasets.report(work.attempt_id, dispatcher=dispatcher)
            except Transient as exc:  # the outbox row stays: sent again after its lease
                log.warning("reporting the datasets of attempt %s failed, will retry: %s",
                            work.attempt_id, exc)


def handle_poll_batch(attempt_ids: list[int], *, dispatcher: Dispatcher) -> None:
    executor.poll(attempt_ids, dispatcher=dispatcher)
