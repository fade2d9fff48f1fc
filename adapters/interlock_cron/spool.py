"""Reports on their way to the API: sent now, or kept on disk and sent later.

A report that cannot be delivered (API down, hanging, answering 5xx) is written to the
spool directory, one JSON file per report, named so that they sort in the order they
were made. Every later delivery sends the spool first, in order, under a file lock (so
two wrappers never send the same file) and only then its own report: a finish never
overtakes its start. A report the API refuses (4xx: a bad secret, an unknown system)
goes to `rejected/` with the answer. Only the standard library is used: this runs in every
wrapped cron job.

A spool that cannot be written (a full disk, a read-only or foreign directory) never
fails the job: the report is dropped, a line goes to `delivery.log` if that still can be
written, and no temp file is left behind. `delivery.log` is rotated at LOG_MAX_BYTES
(one previous file, `delivery.log.1`) and `rejected/` keeps the REJECTED_KEEP newest.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.adapters.signing import sign

EVENTS_PATH = "/api/v1/events/cron"
REJECTED_DIR = "rejected"
LOG_FILE = "delivery.log"
LOG_MAX_BYTES = 1 << 20
REJECTED_KEEP = 1000
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
        True when the report was delivered now. Never raises: a spool that cannot be
        written loses the report (noted in delivery.log when possible), not the job."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self._locked():
                if not self.down and self._flush() \
                        and self._send_or_reject(_encode(report), name=None):
                    return True
                self._write(report)
                return False
        except Exception as exc:  # noqa: BLE001 - ENOSPC, EROFS, EACCES...: never the job's
            self._log(f"report lost, the spool cannot be written: {type(exc).__name__}: {exc}")
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
            _prune_rejected(rejected)
            return True

    def _write(self, report: dict[str, Any]) -> None:
        _write_atomically(self.dir / _file_name(report), _encode(report))

    def _log(self, line: str) -> None:
        """Best effort, never on stdout or stderr: the wrapped job's output stays its own.
        A line that cannot be written is dropped, and an empty log it created removed."""
        path = self.dir / LOG_FILE
        data = f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {line}\n".encode()
        try:
            if path.stat().st_size + len(data) > LOG_MAX_BYTES:
                os.replace(path, path.with_name(LOG_FILE + ".1"))
        except OSError:
            pass
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            return
        try:
            os.write(fd, data)
        except OSError:
            with suppress(OSError):
                if os.fstat(fd).st_size == 0:
                    path.unlink()
        finally:
            os.close(fd)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # The directory itself is locked: no lock file to create on a full or read-only disk.
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
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
    """``path`` complete or not at all: a failed write leaves no temp file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def _prune_rejected(rejected: Path) -> None:
    """Keep the REJECTED_KEEP newest refused reports (names sort by age) and their reasons."""
    reports = sorted(p.name for p in rejected.glob("*.json"))
    for name in reports[:-REJECTED_KEEP]:
        for path in (rejected / name, rejected / (name + ".reason")):
            with suppress(OSError):
                path.unlink()
