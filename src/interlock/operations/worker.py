"""`interlock worker`: a Celery worker (thread pool) plus a reconciler thread.

Threads, not prefork: handlers spend their time waiting on the store and on foreign
systems, and a thread pool lets the reconciler live in the same process without the
hazards of forking after threads start.
"""

from __future__ import annotations

import socket

from interlock.dispatch.celery_app import CeleryDispatcher, app
from interlock.dispatch.reconciler import ReconcilerThread
from interlock.operations.runtime import periodic_jobs


def run_worker(*, concurrency: int, loglevel: str, name: str | None) -> None:
    celery = app()
    reconciler = ReconcilerThread(CeleryDispatcher(celery), jobs=periodic_jobs())
    reconciler.start()
    try:
        celery.Worker(pool="threads", concurrency=concurrency, loglevel=loglevel,
                      hostname=name or f"interlock@{socket.gethostname()}",
                      without_mingle=True, without_gossip=True).start()
    finally:
        reconciler.stop()
