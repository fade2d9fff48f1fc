"""`interlock worker-ping NAME`: a worker's liveness, asked of the worker itself through the
broker (Celery's remote-control `ping`). A worker that is alive but stuck on a broker it
lost, or frozen, does not answer; a process check would say it is fine."""

from __future__ import annotations

import socket

from interlock.dispatch.celery_app import app

TIMEOUT_S = 5.0


def default_name() -> str:
    """The name `interlock worker` gives itself without `--name`."""
    return f"interlock@{socket.gethostname()}"


def ping(name: str, timeout: float = TIMEOUT_S) -> bool:
    replies = app().control.ping(destination=[name], timeout=timeout)
    return any(name in reply for reply in replies)
