"""A worker holding an unacknowledged message when Redis restarts (found by the chaos soak,
`bench/soak.py`): kombu's restore of that message on the dead connection raises
`AttributeError: 'NoneType' object has no attribute 'hostname'`, Celery calls it an
"Unrecoverable error" and the worker stopped for good. `interlock worker` now starts itself
again (same pid, a fresh broker connection), and the run it was working on finishes."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from interlock.dispatch.celery_app import CeleryDispatcher, make_app
from interlock.operations import runs as ops
from interlock.operations.worker import MIN_UP_S, gave_up
from interlock.states import RunState
from interlock.store.db import session_scope
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import Run, TaskKind
from tests.helpers import wait_run, write_flow
from tests.soak_services import PrivateRedis
from tests.workers import worker_pool

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs the redis-server binary")]

FLOW = """
id: held
namespace: tests.broker_restart
nodes:
  only: {uses: noop}
"""


class _Later:
    """A dispatcher that sends nothing: the test sends the work itself, when it wants."""

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        pass

    def send_polls(self, batch: PollBatch) -> None:
        pass


def test_a_worker_holding_a_message_survives_a_redis_restart(
        pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import _use
    _use(monkeypatch, tmp_path, pg_schema_url)
    broker = PrivateRedis(tmp_path / "redis")
    broker.start()
    try:
        with worker_pool(pg_schema_url, tmp_path, count=1,
                         extra_env={"INTERLOCK_BROKER_URL": broker.url,
                                    "INTERLOCK_LEASE_SECONDS": "60"}) as pool:
            (worker,) = pool.workers
            up_since = time.monotonic()
            flow, _ = ops.register(write_flow(tmp_path, FLOW).read_text())
            run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                                   dispatcher=_Later())
            with session_scope() as session:  # the run's row lock: its planning pass waits
                session.scalars(select(Run).where(Run.id == run_id).with_for_update()).one()
                CeleryDispatcher(make_app(broker.url)).send(Work(TaskKind.ADVANCE, run_id))
                _wait_for(lambda: "interlock.work[" in worker.log.read_text(), "received")
                time.sleep(max(0.5, MIN_UP_S + 1 - (time.monotonic() - up_since)))
                broker.stop()  # the worker holds the message, unacknowledged
                time.sleep(2.0)
                broker.start()
            log = worker.log.read_text
            _wait_for(lambda: "Connected to redis" in log().rsplit("Unrecoverable", 1)[-1]
                      and worker.proc.poll() is None, "the worker back on Redis")
            assert worker.proc.poll() is None, log()[-3000:]
            assert wait_run(run_id, timeout=60).state is RunState.SUCCEEDED
            if "Unrecoverable error" in log():
                assert "starting again" in log(), log()[-3000:]
    finally:
        broker.stop()


def test_only_a_worker_celery_gave_up_on_starts_again() -> None:
    assert gave_up(1)          # "Unrecoverable error": however long it had been up
    assert not gave_up(0)      # a clean stop
    assert not gave_up(None)


def _wait_for(condition: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
