"""Readiness for `GET /readyz`: the store answers `SELECT 1` and, when a broker is
configured, the broker answers a ping, each within a bound. Liveness (`/healthz`) does no
I/O and needs nothing here.

Each probe runs in its own daemon thread and the caller waits at most the bound: a store
that hangs (a black-holed address, an exhausted pool) gives "did not answer within 2 s", never a
hung readiness check. The thread itself ends by the store's own timeouts (connect timeout,
statement timeout, pool timeout).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from kombu import Connection
from sqlalchemy import text

from interlock.config.env import settings
from interlock.store.db import engine_for

READY_BOUND_S = 2.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str     # "store" or "broker"
    ok: bool
    detail: str   # "ok", "did not answer within 2 s", "unreachable (OperationalError)"
    ms: float     # how long it took (the bound when it did not answer)


def ping_store() -> None:
    with engine_for().connect() as conn:
        conn.execute(text("SELECT 1"))


def ping_broker(url: str, bound_s: float = READY_BOUND_S) -> None:
    """Opens a connection to the broker (Redis answers a PING as it opens) and closes it."""
    options = {"socket_timeout": bound_s, "socket_connect_timeout": bound_s}
    with Connection(url, connect_timeout=bound_s, transport_options=options) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=bound_s)


async def readiness(*, bound_s: float = READY_BOUND_S) -> list[Check]:
    """Every dependency's check, run at once; the whole takes at most about ``bound_s``."""
    probes: dict[str, Callable[[], None]] = {"store": ping_store}
    broker = settings().broker_url
    if broker:
        probes["broker"] = lambda: ping_broker(broker, bound_s)
    futures = {name: _in_thread(name, probe) for name, probe in probes.items()}
    await asyncio.wait([asyncio.wrap_future(f) for f in futures.values()], timeout=bound_s)
    return [f.result() if f.done() else Check(name, False, f"did not answer within {bound_s:g} s",
                                              bound_s * 1000)
            for name, f in futures.items()]


def _in_thread(name: str, probe: Callable[[], None]) -> Future[Check]:
    future: Future[Check] = Future()

    def run() -> None:
        started = time.monotonic()
        try:
            probe()
        except Exception as exc:  # any failure is "not ready"; the log has the particulars
            log.warning("readiness: the %s does not answer: %s", name, exc)
            detail = f"unreachable ({type(exc).__name__})"
            future.set_result(Check(name, False, detail, _ms_since(started)))
            return
        future.set_result(Check(name, True, "ok", _ms_since(started)))

    threading.Thread(target=run, name=f"interlock-ready-{name}", daemon=True).start()
    return future


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
