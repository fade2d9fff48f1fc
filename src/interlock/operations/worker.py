"""`interlock worker`: a Celery worker (thread pool) plus a reconciler thread.

Threads, not prefork: handlers spend their time waiting on the store and on foreign
systems, and a thread pool lets the reconciler live in the same process without the
hazards of forking after threads start.

A worker that Celery gives up on starts itself again. When Redis goes away while the worker
holds an unacknowledged message, kombu restores that message on the dead connection and
raises `AttributeError: 'NoneType' object has no attribute 'hostname'`; Celery calls it an
"Unrecoverable error" and stops the worker for good (found by `bench/soak.py`; kombu#970,
#582 report the same). Nothing is lost (the outbox re-sends what the worker held), but a
host whose supervisor does not restart it would have one worker fewer. So the process
replaces itself (`exec`: same pid, same process group, a fresh broker connection) unless a
shutdown was asked for, at most once every `MIN_UP_S` seconds (a worker that gave up sooner
after starting waits out the rest first: a configuration that can never work is retried
slowly, with an error logged each time, as a supervisor would, instead of spinning). The
pace holds whatever the uptime: a worker that lost Redis one second after it started is
restarted too (`tests/test_broker_down.py` found one left alive but consuming nothing).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time

from celery.worker import state as celery_state

from interlock.dispatch.celery_app import CeleryDispatcher, app
from interlock.dispatch.reconciler import ReconcilerThread
from interlock.operations.runtime import periodic_jobs

log = logging.getLogger(__name__)
MIN_UP_S = 10.0


def run_worker(*, concurrency: int, loglevel: str, name: str | None) -> None:
    celery = app()
    reconciler = ReconcilerThread(CeleryDispatcher(celery), jobs=periodic_jobs())
    reconciler.start()
    began = time.monotonic()
    worker = celery.Worker(pool="threads", concurrency=concurrency, loglevel=loglevel,
                           hostname=name or f"interlock@{socket.gethostname()}",
                           without_mingle=True, without_gossip=True)
    try:
        worker.start()
    finally:
        reconciler.stop()
    if gave_up(worker.exitcode):
        pause = max(0.0, MIN_UP_S - (time.monotonic() - began))
        log.error("the Celery worker stopped on an unrecoverable error (above); starting "
                  "again in this process with a fresh broker connection in %.0f s", pause)
        time.sleep(pause)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)


def gave_up(exitcode: int | None) -> bool:
    """Did Celery stop the worker on its own, not on a SIGTERM/SIGINT/SIGQUIT?"""
    asked = celery_state.should_stop is not None or celery_state.should_terminate is not None
    return bool(exitcode) and not asked
