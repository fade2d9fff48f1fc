"""`interlock cron exec --job ID -- COMMAND...`: run a cron job and report it.

A crontab line calls this instead of the bare command. It reports the start, then the
finish with the exit code, the duration and the output's tail, to
`POST /api/v1/events/cron` (signed like every push); reports that cannot go now are
spooled and sent later (`interlock_cron.spool`). It never changes what crond sees: the
command's stdout and stderr pass through byte for byte, its stdin is the wrapper's, and
the wrapper exits with the command's exit code, or dies of the same signal, even when
the spool cannot be written (a full disk): reporting is best effort, the job is not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from interlock.adapters import settings
from interlock_cron.spool import Delivery, Spool

TAIL_BYTES = 4000
CHUNK = 65536
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE = 127, 126  # what a shell answers for these


def default_system() -> str:
    return settings().cron_system or f"cron/{socket.gethostname().split('.')[0]}"


def default_spool() -> Path:
    return settings().cron_spool or settings().home / "spool" / "cron"


def secret_from_env() -> str | None:
    if secret := settings().cron_secret:
        return secret
    if path := settings().cron_secret_file:
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None  # reports wait in the spool until the secret is readable
    return None


def make_spool(directory: Path | None = None) -> Spool:
    delivery = Delivery(api_url=settings().api_url, secret=secret_from_env(),
                        timeout_s=settings().cron_timeout_s)
    return Spool(directory or default_spool(), delivery)


class _Tail:
    """The last TAIL_BYTES of stdout and stderr together, in arrival order."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(data)
            self._size += len(data)
            while self._size - len(self._chunks[0]) >= TAIL_BYTES:
                self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._chunks)[-TAIL_BYTES:]
        return data.decode("utf-8", errors="replace")


def _pump(source: IO[bytes], sink: IO[bytes], tail: _Tail) -> None:
    fd = source.fileno()
    while data := os.read(fd, CHUNK):
        try:
            sink.write(data)
            sink.flush()
        except (BrokenPipeError, ValueError):
            pass  # nobody reads our output any more; keep draining so the job never blocks
        tail.add(data)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def run(job: str, argv: list[str], *, system: str | None = None,
        spool: Spool | None = None) -> int:
    """Run ``argv`` as job ``job``; returns the exit status to exit with (a negative
    number: the signal that killed the command)."""
    if spool is None:
        try:
            spool = make_spool()
        except Exception:  # noqa: BLE001 - a broken setting never stops nor changes the job
            spool = None
    deliver: Callable[[dict[str, Any]], bool] = \
        spool.deliver if spool is not None else (lambda _report: False)
    report: dict[str, Any] = {"system": system or default_system(), "job": job,
                              "run": uuid.uuid4().hex, "host": socket.gethostname(),
                              "user": os.environ.get("LOGNAME") or os.environ.get("USER"),
                              "pid": os.getpid()}
    started = time.time()
    report["started_at"] = _iso(started)
    starting = threading.Thread(target=deliver, args=({**report, "event": "start"},),
                                daemon=True)
    starting.start()  # in parallel: a hanging API never delays the job
    tail = _Tail()
    code, sig = _execute(argv, tail)
    ended = time.time()
    starting.join()
    deliver({**report, "event": "finish", "ended_at": _iso(ended),
             "exit_code": code, "signal": sig, "duration_s": round(ended - started, 3),
             "output_tail": tail.text()})
    return -sig if sig is not None else code if code is not None else 1


def _execute(argv: list[str], tail: _Tail) -> tuple[int | None, int | None]:
    """(exit code, signal) of the command, its output passed through."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        message = f"interlock cron exec: {argv[0]}: {exc.strerror}\n".encode()
        sys.stderr.buffer.write(message)
        sys.stderr.flush()
        tail.add(message)
        missing = isinstance(exc, FileNotFoundError)
        return (EXIT_NOT_FOUND if missing else EXIT_NOT_EXECUTABLE), None
    previous = {s: signal.signal(s, lambda n, _f: proc.send_signal(n)) for s in FORWARDED}
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout.buffer, tail)),
             threading.Thread(target=_pump, args=(proc.stderr, sys.stderr.buffer, tail))]
    for pump in pumps:
        pump.start()
    for pump in pumps:
        pump.join()
    status = proc.wait()
    for number, handler in previous.items():
        signal.signal(number, handler)
    return (None, -status) if status < 0 else (status, None)


def exit_like(status: int) -> None:
    """Exit with ``status``; a negative one dies of that signal, as the command did."""
    sys.stdout.flush()
    sys.stderr.flush()
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        time.sleep(1)  # the signal is delivered before this returns
        os._exit(128 - status)  # a signal that does not kill by default (SIGCHLD...)
    os._exit(status)
