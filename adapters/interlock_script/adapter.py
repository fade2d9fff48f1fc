"""`uses: script`: run a command on this host, in a runner that survives the worker.

Each attempt has a directory under ``$INTERLOCK_HOME/attempts/<key>``. `submit`
writes the spec and a ``spawned`` marker, then starts a detached runner
(:mod:`interlock_script.runner`); everything after that is read back from files.
The marker is written before the spawn, so a worker killed in between leaves a
LOST attempt at worst, never a script started twice.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ValidationError

from interlock.adapters import (
    Adapter,
    Handle,
    JobSpec,
    LogChunk,
    Observation,
    Rejected,
    Transient,
    settings,
)
from interlock_script.layout import AttemptPaths, dir_name_for, write_atomically
from interlock_script.logread import read_chunk
from interlock_script.observe import lost, observe, on_this_host, paths_of
from interlock_script.params import ScriptParams
from interlock_script.prepare import build_spec
from interlock_script.procs import pid_alive, read_pid_file, signal_group
from interlock_script.records import RunResult, now_iso
from interlock_script.runner import EX_TEMPFAIL
from interlock_script.sealed import Sealed
from interlock_script.secret_env import only_in_env, refuse_system_secrets, split_env
from interlock_script.status import runner_status

KIND = "script"
RUNNER_MODULE = "interlock_script.runner"
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
LAUNCH_TIMEOUT_S = 30.0  # the launcher only forks and exits; this is a safety net


class ScriptAdapter(Adapter):
    kind: ClassVar[str] = KIND
    params_model: ClassVar[type[BaseModel]] = ScriptParams
    poll_interval: ClassVar[tuple[float, float]] = (0.1, 1.0)
    system_has_url: ClassVar[bool] = False  # script/<name> systems only say who runs (run_as)

    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        try:
            return self._submit(job, key)
        except OSError as exc:
            if exc.errno in DISK_FULL:  # space comes back: submitted again after a backoff
                raise Transient(f"the attempts folder {settings().attempts_dir} is full "
                                f"({exc.strerror}); the node starts once there is room") from None
            raise

    def _submit(self, job: JobSpec, key: str) -> Handle | Observation:
        paths = AttemptPaths(settings().attempts_dir / dir_name_for(key))
        paths.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = Handle(kind=KIND, external_id=key,
                        data={"dir": str(paths.dir), "host": socket.gethostname()})
        with _locked(paths.lock):
            if paths.spawned.exists():
                return handle  # an earlier submit with this key got this far: adopt it
            sealed = self._prepare(job, paths)
            write_atomically(paths.spawned, now_iso() + "\n")
            return _launch(handle, paths, sealed)

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return [observe(h) for h in handles]

    def cancel(self, handle: Handle) -> None:
        paths = paths_of(handle)
        if paths.result.exists() or not paths.dir.is_dir():
            return
        # The runner watches for this marker: it works before its pid file exists and
        # from another host; the signal below only makes it quicker.
        write_atomically(paths.cancel_requested, now_iso() + "\n")
        if not on_this_host(handle):
            return
        runner = read_pid_file(paths.runner_pid)
        if runner is not None and runner.alive():
            os.kill(runner.pid, signal.SIGTERM)  # the runner stops the group and records it
        elif runner_status(paths).gone:
            _cancel_orphan(paths)

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        text = cursor or "0"
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise Rejected(f"bad log cursor {text[:40]!r}: expected a byte offset, the "
                           "`cursor` of the previous chunk")
        offset = int(text)
        return read_chunk(paths_of(handle), offset, local=on_this_host(handle))

    def attempt_link(self, handle: Handle, *, ui: str | None, error: str | None) -> str | None:
        """The handle's `url` (a robot's log.html), else the attempt's directory."""
        directory = Path(str(handle.data.get("dir") or ""))
        return handle.url or (directory.as_uri() if directory.is_absolute() else None)

    @staticmethod
    def _prepare(job: JobSpec, paths: AttemptPaths) -> Sealed:
        """Write what the runner needs to disk, except secrets: those are returned sealed."""
        try:
            params = ScriptParams.model_validate(job.params)
        except ValidationError as e:
            raise Rejected(f"invalid `with:` for uses: script: {e}") from None
        only_in_env(job.params, job.secrets, KIND)
        refuse_system_secrets(params.inherit_env)
        plain, sealed = split_env(params.env, job.secrets)
        spec = build_spec(params.model_copy(update={"env": plain}), job, paths.script)
        if params.script is not None:
            write_atomically(paths.script, params.script, mode=0o700)
        spec.save(paths.spec)
        return sealed


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _launch(handle: Handle, paths: AttemptPaths, sealed: Sealed) -> Handle | Observation:
    """Start the runner. It forks and its first process exits at once, so we reap that
    here and no worker is ever the parent of a runner (no zombies, no stray waits).
    Secrets reach it through its stdin, read before it forks: never a file, never argv."""
    with paths.runner_err.open("ab") as err:
        launcher = subprocess.Popen([sys.executable, "-m", RUNNER_MODULE, str(paths.dir)],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=err, start_new_session=True, close_fds=True)
    try:
        launcher.communicate(sealed.encode(), timeout=LAUNCH_TIMEOUT_S)
        code = launcher.returncode
    except subprocess.TimeoutExpired:
        launcher.kill()
        launcher.wait()
        return handle  # it may still have forked; the pid file or its absence will tell
    if code == EX_TEMPFAIL:  # no room for the runner's records: nothing started, try later
        paths.spawned.unlink()  # under the attempt's lock: the next submit launches afresh
        raise OSError(errno.ENOSPC, "no room to reserve the runner's records")
    if code > 0:  # failed before it forked (a signal could have come after): nothing runs
        return lost(handle, f"runner failed to start (exit code {code}); see {paths.runner_err}")
    return handle


def _cancel_orphan(paths: AttemptPaths) -> None:
    """The runner is gone without a result: stop what it left and record the cancel."""
    if paths.result.exists():
        return  # it finished just before it exited; a dead runner writes nothing more
    child = read_pid_file(paths.child_pid)
    # Only while the leader is ours or gone: a group id is not reused while members live.
    if child is not None and (child.alive() or not pid_alive(child.pid)):
        signal_group(child.pid, signal.SIGKILL)
    RunResult(exit_code=None, signal=None, timed_out=False, cancelled=True, started_at=None,
              finished_at=now_iso()).save(paths.result)
