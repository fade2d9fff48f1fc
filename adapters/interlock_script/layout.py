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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
