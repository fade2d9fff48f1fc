"""Celery on Redis: the tasks that carry work between `interlock worker` processes.

Tasks are thin: they call the same handlers as the embedded loop. Delivery settings
favour at-least-once (late acks, reject when the worker is lost); the handlers'
compare-and-set states and idempotency keys turn that into exactly-once effects.
"""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import OperationalError

from interlock.config.env import settings
from interlock.dispatch.chaining import ChainingDispatcher
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import TaskKind

log = logging.getLogger(__name__)
WORK_TASK = "interlock.work"
# A send after a commit: try briefly, then leave the work to the outbox's resend.
SEND_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
BROKER_DOWN = (OperationalError, ConnectionError, OSError)
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
        # A broker down for long (a Redis restart, a failover) is waited for, never given up
        # on: the default stops the worker after 100 attempts.
        broker_connection_max_retries=None,
        # Tasks running when the connection drops go on (False, today's default, said
        # explicitly: Celery 6 turns it on). A thread cannot be cancelled anyway, and what
        # they do is idempotent: the outbox re-sends whatever they do not finish.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Longer than any countdown we use, so delayed tasks are not delivered twice.
        broker_transport_options={"visibility_timeout": 600},
        worker_hijack_root_logger=False,
        task_default_queue=settings().queue,
    )
    app.task(name=WORK_TASK)(_work_task)
    app.task(name=POLL_TASK)(_poll_task)
    return app


class CeleryDispatcher:
    """Sends what the outbox holds. Every send follows a commit that wrote the work's
    outbox row (polls: the attempts' due times), so a broker that is down loses nothing:
    the send is given up quickly, logged, and the reconciler sends the row again once its
    lease runs out. A caller (an API request that committed a run) is never told it failed."""

    def __init__(self, app: Celery):
        self.app = app

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        self._publish(WORK_TASK, [work.kind.value, work.run_id, work.attempt_id],
                      countdown=countdown or None)

    def send_polls(self, batch: PollBatch) -> None:
        self._publish(POLL_TASK, [batch.attempt_ids])

    def _publish(self, task: str, args: list[object], countdown: float | None = None) -> None:
        try:
            self.app.send_task(task, args=args, countdown=countdown, retry=True,
                               retry_policy=SEND_RETRY)
        except BROKER_DOWN as exc:
            log.warning("broker unreachable (%s: %s); %s %s stays in the outbox and is sent "
                        "again by the reconciler", type(exc).__name__, exc, task, args)


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
