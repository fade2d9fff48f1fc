"""Reports on their way to the API: sent now, or kept on disk and sent later.

A report that cannot be delivered (API down, hanging, answering 5xx) is written to the
spool directory, one JSON file per report, named so that they sort in the order they
were made. Every later delivery sends the spool first, in order, under a file lock (so
two wrappers never send the same file) and only then its own report: a finish never
overtakes its start. A report the API refuses (4xx: a bad secret, an unknown system)
goes to `rejected/` with the answer, never silently dropped. Only the standard library is
used: this runs in every wrapped cron job.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.adapters.signing import sign

EVENTS_PATH = "/api/v1/events/cron"
LOCK_FILE = ".lock"
REJECTED_DIR = "rejected"
LOG_FILE = "delivery.log"
RETRYABLE_STATUS = frozenset({408, 425, 429})


class Undelivered(Exception):
    """The API could not take the report now; it stays spooled."""


class Refused(Exception):
    """The API answered that this report will never be accepted (a 4xx)."""


@dataclass(frozen=True)
class Delivery:
    api_url: str
    secret: str | None
    timeout_s: float

    def send(self, body: bytes) -> None:
        if self.secret is None:
            raise Undelivered("no secret configured (INTERLOCK_CRON_SECRET or "
                              "INTERLOCK_CRON_SECRET_FILE): reports wait in the spool")
        request = urllib.request.Request(
            self.api_url.rstrip("/") + EVENTS_PATH, data=body, method="POST",
            headers={"Content-Type": "application/json", **sign(self.secret, body)})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            if exc.code >= 500 or exc.code in RETRYABLE_STATUS:
                raise Undelivered(f"HTTP {exc.code}: {detail}") from None
            raise Refused(f"HTTP {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:  # refused, reset, timed out, bad URL
            raise Undelivered(f"{type(exc).__name__}: {exc}") from None


class Spool:
    def __init__(self, directory: Path, delivery: Delivery):
        self.dir, self.delivery = directory, delivery
        self.down = False  # once the API failed in this process, later reports spool at once

    def pending(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob("*.json") if p.is_file())

    def deliver(self, report: dict[str, Any]) -> bool:
        """Send what is spooled, then ``report``; spool it if it cannot go now.
        True when the report was delivered now."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            if not self.down and self._flush() \
                    and self._send_or_reject(_encode(report), name=None):
                return True
            self._write(report)
            return False

    def flush(self) -> int:
        """Send what is spooled, in order; returns how many files are still waiting."""
        if not self.dir.is_dir():
            return 0
        with self._locked():
            self._flush()
        return len(self.pending())

    def _flush(self) -> bool:
        for path in self.pending():
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                continue
            if not self._send_or_reject(body, name=path.name):
                return False
            path.unlink(missing_ok=True)
        return True

    def _send_or_reject(self, body: bytes, *, name: str | None) -> bool:
        """True once the API has it (or refused it for good, kept under rejected/)."""
        try:
            self.delivery.send(body)
            return True
        except Undelivered as exc:
            self.down = True
            self._log(f"not delivered, kept: {exc}")
            return False
        except Refused as exc:
            rejected = self.dir / REJECTED_DIR
            rejected.mkdir(exist_ok=True, mode=0o700)
            stem = name or _file_name(json.loads(body))
            _write_atomically(rejected / stem, body)
            _write_atomically(rejected / (stem + ".reason"), str(exc).encode())
            self._log(f"refused by the API, kept in {rejected / stem}: {exc}")
            return True

    def _write(self, report: dict[str, Any]) -> None:
        _write_atomically(self.dir / _file_name(report), _encode(report))

    def _log(self, line: str) -> None:
        # Never on stdout or stderr: the wrapped job's output must stay its own.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with (self.dir / LOG_FILE).open("a", encoding="utf-8") as log:
            log.write(f"{stamp} {line}\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _encode(report: dict[str, Any]) -> bytes:
    return json.dumps(report, separators=(",", ":")).encode()


def _file_name(report: dict[str, Any]) -> str:
    # Nanoseconds first: names sort in the order the reports were made.
    return f"{time.time_ns():020d}-{report.get('run', 'run')}-{report.get('event', 'x')}.json"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
