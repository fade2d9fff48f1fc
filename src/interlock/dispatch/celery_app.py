"""Celery on Redis: the tasks that carry work between `interlock worker` processes.

Tasks are thin: they call the same handlers as the embedded loop. Delivery settings
favour at-least-once (late acks, reject when the worker is lost); the handlers'
compare-and-set states and idempotency keys turn that into exactly-once effects.
"""

from __future__ import annotations

from celery import Celery

from interlock.config.env import settings
from interlock.dispatch.chaining import ChainingDispatcher
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import TaskKind

WORK_TASK = "interlock.work"
POLL_TASK = "interlock.poll_batch"


def make_app(broker_url: str) -> Celery:
    app = Celery("interlock", broker=broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,        # the store is the source of truth, not a result backend
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        # Longer than any countdown we use, so delayed tasks are not delivered twice.
        broker_transport_options={"visibility_timeout": 600},
        worker_hijack_root_logger=False,
        task_default_queue=settings().queue,
    )
    app.task(name=WORK_TASK)(_work_task)
    app.task(name=POLL_TASK)(_poll_task)
    return app


class CeleryDispatcher:
    def __init__(self, app: Celery):
        self.app = app

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        self.app.send_task(WORK_TASK, args=[work.kind.value, work.run_id, work.attempt_id],
                           countdown=countdown or None)

    def send_polls(self, batch: PollBatch) -> None:
        self.app.send_task(POLL_TASK, args=[batch.attempt_ids])


_app: Celery | None = None


def app() -> Celery:
    global _app
    if _app is None:
        broker = settings().broker_url
        if broker is None:
            raise RuntimeError("INTERLOCK_BROKER_URL is not set; Celery dispatch needs a broker")
        _app = make_app(broker)
    return _app


def _work_task(kind: str, run_id: str, attempt_id: int | None) -> None:
    ChainingDispatcher(CeleryDispatcher(app())).run(Work(TaskKind(kind), run_id, attempt_id))


def _poll_task(attempt_ids: list[int]) -> None:
    ChainingDispatcher(CeleryDispatcher(app())).run(PollBatch("batch", attempt_ids))
