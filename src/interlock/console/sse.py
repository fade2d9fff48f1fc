"""Server-sent event streams: bounded per principal, closed at shutdown and when the
caller's credential stops being accepted.

A stream polls a snapshot function about once a second (in a worker thread: it reads the
store) and sends an event only when the snapshot changed; a comment line keeps idle
connections open through proxies. The browser never polls.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

TICK_S = 1.0              # how often a stream looks at the store
HEARTBEAT_S = 15.0        # a comment line at least this often
RECHECK_S = 10.0          # the credential is checked again this often
PER_PRINCIPAL = 4         # open streams of one principal
TOTAL = 200               # open streams of this process


class TooManyStreams(Exception):
    """The caller (or the process) already holds as many streams as allowed."""


@dataclass
class StreamHub:
    """Who holds how many streams, and whether the server is going down."""

    per_principal: int = PER_PRINCIPAL
    total: int = TOTAL
    held: dict[str, int] = field(default_factory=dict)
    closing: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acquire(self, actor: str) -> None:
        with self.lock:
            if self.closing.is_set():
                raise TooManyStreams("the server is shutting down")
            if sum(self.held.values()) >= self.total:
                raise TooManyStreams(f"this server holds {self.total} streams already")
            if self.held.get(actor, 0) >= self.per_principal:
                raise TooManyStreams(f"{actor} holds {self.per_principal} streams already: "
                                     "close one (another tab) first")
            self.held[actor] = self.held.get(actor, 0) + 1

    def slot(self, actor: str) -> Callable[[], None]:
        """Acquire a slot for ``actor``; returns its release, which frees it once however
        often it is called (the stream's end and the response's end both call it)."""
        self.acquire(actor)
        done = threading.Event()

        def release() -> None:
            with self.lock:
                if done.is_set():
                    return
                done.set()
            self.release(actor)
        return release

    def release(self, actor: str) -> None:
        with self.lock:
            left = self.held.get(actor, 0) - 1
            if left > 0:
                self.held[actor] = left
            else:
                self.held.pop(actor, None)

    def count(self, actor: str | None = None) -> int:
        with self.lock:
            return sum(self.held.values()) if actor is None else self.held.get(actor, 0)

    def shutdown(self) -> None:
        """Every stream ends within a tick; no new one opens."""
        self.closing.set()

    def watch_exit_signals(self) -> None:
        """End the streams as soon as the server is told to stop (SIGTERM, SIGINT): a server
        waits for open responses before it shuts down, and a stream never ends by itself.
        Chains the handlers already installed (uvicorn's); only in the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def chained(num: int, frame: Any, previous: Any = previous) -> None:
                self.shutdown()
                previous(num, frame)

            signal.signal(sig, chained)


def event(name: str, data: Any) -> bytes:
    """One SSE event; ``data`` as one line of JSON (a newline in it cannot end the event)."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


Snapshot = Callable[[], Any]
StillAllowed = Callable[[], Awaitable[str | None]]  # None: go on; a sentence: stop


async def stream(hub: StreamHub, release: Callable[[], None], name: str, snapshot: Snapshot,
                 *, disconnected: Callable[[], Awaitable[bool]],
                 still_allowed: StillAllowed) -> AsyncIterator[bytes]:
    """Events ``name`` carrying the snapshot whenever it changes, until the client leaves,
    its credential is refused, the snapshot fails, or the server shuts down. The slot in
    ``hub`` (already acquired) is released at the end (``release``)."""
    try:
        last: str | None = None
        beat = checked = time.monotonic()
        yield b"retry: 3000\n\n"
        while not hub.closing.is_set():
            try:
                data = await anyio.to_thread.run_sync(snapshot)
            except Exception as exc:  # NotFound, Forbidden...: said once, then the end
                yield event("end", {"reason": str(exc)[:500]})
                return
            text = json.dumps(data, sort_keys=True, default=str)
            now = time.monotonic()
            if text != last:
                last, beat = text, now
                yield event(name, json.loads(text))
            elif now - beat >= HEARTBEAT_S:
                beat = now
                yield b": ping\n\n"
            if now - checked >= RECHECK_S:
                checked = now
                if (reason := await still_allowed()) is not None:
                    yield event("end", {"reason": reason})
                    return
            if await _wait(hub, disconnected):
                return
        yield event("end", {"reason": "the server is shutting down"})
    finally:
        release()


async def _wait(hub: StreamHub, disconnected: Callable[[], Awaitable[bool]]) -> bool:
    """Sleep one tick in small steps; True when the client has gone."""
    deadline = time.monotonic() + TICK_S
    while time.monotonic() < deadline and not hub.closing.is_set():
        if await disconnected():
            return True
        await anyio.sleep(0.25)
    return False
