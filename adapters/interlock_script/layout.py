"""Where one attempt keeps its files: the directory the adapter and the runner share.

Everything the adapter needs to find an attempt again lives here, so any worker on
the host can poll, cancel or read the logs of a script another worker started.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = ".lock"
SPEC_FILE = "spec.json"
SPAWNED_FILE = "spawned"
SCRIPT_FILE = "script"
RUNNER_PID_FILE = "runner.pid"
RUNNER_ERR_FILE = "runner.err"
CHILD_PID_FILE = "child.pid"
LOG_FILE = "log"
OUTPUTS_FILE = "outputs"
RESULT_FILE = "result.json"
CANCEL_FILE = "cancel-requested"
RESERVED_SUFFIX = ".reserved"
# Room kept for what the runner must write after the command started, whatever the disk:
# result.json (its JSON is far smaller) and the two pid files.
RESERVE_BYTES = {RESULT_FILE: 16384, RUNNER_PID_FILE: 64, CHILD_PID_FILE: 64}

ATTEMPTS_FIX = ("the handle does not come from this worker's INTERLOCK_HOME: check that "
                "every worker shares it, and that the stored handle was not altered")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME = 150  # well under NAME_MAX (255) once a hash suffix is added


def dir_name_for(key: str) -> str:
    """A directory name for ``key``; keys that had to be changed get a hash suffix,
    so two different keys never share a directory."""
    safe = _UNSAFE.sub("_", key).strip(".")
    if safe == key and 0 < len(key) <= _MAX_NAME:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{safe[:_MAX_NAME] or 'key'}-{digest}"


def checked_dir(attempts: Path, given: object) -> Path:
    """A handle's `dir`, read back from the store, resolved and refused unless it is one
    directory directly under ``attempts`` (the worker's): a row that was tampered with, or
    written by a worker with another INTERLOCK_HOME, is never read or written."""
    # Imported here: the runner imports this module, and must start without the SDK.
    from interlock.adapters import Rejected, paths
    if not isinstance(given, str) or not given:
        raise Rejected(f"the handle has no attempt directory (`dir` is {given!r})")
    path = paths.inside(attempts, given, "attempt directory", strict=False,
                        place=f"the attempts directory {attempts.resolve()}",
                        fix=ATTEMPTS_FIX)
    if path.parent != attempts.resolve():
        raise Rejected(f"attempt directory {paths.shown(given)} is not directly under "
                       f"{attempts.resolve()}; {ATTEMPTS_FIX}")
    return path


@dataclass(frozen=True)
class AttemptPaths:
    dir: Path

    @property
    def lock(self) -> Path:
        return self.dir / LOCK_FILE

    @property
    def spec(self) -> Path:
        return self.dir / SPEC_FILE

    @property
    def spawned(self) -> Path:
        return self.dir / SPAWNED_FILE

    @property
    def script(self) -> Path:
        return self.dir / SCRIPT_FILE

    @property
    def runner_pid(self) -> Path:
        return self.dir / RUNNER_PID_FILE

    @property
    def runner_err(self) -> Path:
        return self.dir / RUNNER_ERR_FILE

    @property
    def child_pid(self) -> Path:
        return self.dir / CHILD_PID_FILE

    @property
    def log(self) -> Path:
        return self.dir / LOG_FILE

    @property
    def outputs(self) -> Path:
        return self.dir / OUTPUTS_FILE

    @property
    def result(self) -> Path:
        return self.dir / RESULT_FILE

    @property
    def cancel_requested(self) -> Path:
        return self.dir / CANCEL_FILE


def write_atomically(path: Path, data: str, mode: int = 0o600) -> None:
    """Write, fsync, rename, fsync the directory: readers see all of it or none of it,
    and it survives a crash of the host once this returns."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with open(fd, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def reserved(path: Path) -> Path:
    """Where the room for ``path`` is kept until it is written (`reserve`)."""
    return path.with_name(f".{path.name}{RESERVED_SUFFIX}")


def reserve(attempt: AttemptPaths) -> None:
    """Allocate, before the command starts, the room for the runner's own records, so a
    disk that fills while the command runs cannot lose its outcome. Raises OSError (ENOSPC)
    when there is no room: nothing was started; what was reserved is given back."""
    made: list[Path] = []
    try:
        for name, size in RESERVE_BYTES.items():
            place = reserved(attempt.dir / name)
            made.append(place)
            fd = os.open(place, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(fd, b" " * size)
                os.fsync(fd)
            finally:
                os.close(fd)
    except OSError:
        for place in made:
            place.unlink(missing_ok=True)
        raise


def write_reserved(path: Path, data: str, *, durable: bool = True) -> None:
    """Like `write_atomically`, into the room `reserve` kept when there is some and the data
    fits: bytes written over allocated ones need no new block, even on a full disk."""
    place, raw = reserved(path), data.encode("utf-8")
    try:
        fd = os.open(place, os.O_WRONLY)
    except FileNotFoundError:
        return write_atomically(path, data)
    try:
        fits = len(raw) <= os.fstat(fd).st_size
        if fits:
            write_all(fd, raw)
            os.ftruncate(fd, len(raw))  # shrinking frees blocks, never asks for one
            if durable:
                os.fsync(fd)
    finally:
        os.close(fd)
    if not fits:
        return write_atomically(path, data)
    os.replace(place, path)
    if durable:
        _fsync_dir(path.parent)
    return None


def write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
