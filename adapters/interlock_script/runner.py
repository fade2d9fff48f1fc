"""`python -m interlock_script.runner DIR`: run one attempt's command, apart from any worker.

The runner outlives the worker that started it: it detaches at once, runs the
command in a process group of its own, keeps its log, enforces the timeout,
obeys a cancel (SIGTERM), and last of all writes ``result.json``. Workers only ever
read this directory, so a worker that dies mid-attempt loses nothing.

Whatever is left in the command's process group when the command ends is stopped
too: leftovers would hold the log pipe open and outlive timeouts and cancels.
Anything meant to outlive its step must start a session of its own.

Before it detaches, the runner reserves the room for its own records (`layout.reserve`):
when the attempts disk has none it exits with `EX_TEMPFAIL` and nothing starts (`submit`
is tried again later); once the command runs, a full disk can cost log lines, never the
outcome.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

from interlock_script.caplog import DISK_FULL, CappedLog
from interlock_script.environment import build_env
from interlock_script.identity import Identity
from interlock_script.layout import AttemptPaths, reserve, write_all
from interlock_script.procs import detach, group_alive, signal_group, write_pid_file
from interlock_script.records import RunResult, RunSpec, now_iso
from interlock_script.sealed import Sealed, receive

TICK_S = 0.05          # how often the supervisor looks at the child, the clock and a cancel
KILL_GRACE_S = 5.0     # between SIGTERM and SIGKILL to the command's group
PUMP_DRAIN_S = 2.0     # how long to wait for the last output once the group is gone
READ_BYTES = 64 * 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
EX_TEMPFAIL = 75       # sysexits.h: no room for the runner's records; nothing was started


class StopRequest:
    """A cancel: SIGTERM (what `cancel` sends on this host) or the marker file, which
    also reaches a runner whose pid file was not written yet or that runs elsewhere."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.signalled = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = True

    @property
    def requested(self) -> bool:
        return self.signalled or self.marker.exists()


@dataclass(frozen=True)
class Outcome:
    started_at: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None

    def result(self, log: CappedLog) -> RunResult:
        return RunResult(exit_code=self.exit_code, signal=self.signal, timed_out=self.timed_out,
                         cancelled=self.cancelled, started_at=self.started_at,
                         finished_at=now_iso(), error=self.error,
                         log_truncated_bytes=log.dropped, log_lost_bytes=log.lost)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m interlock_script.runner ATTEMPT_DIR", file=sys.stderr)
        return 2
    paths = AttemptPaths(Path(args[0]).resolve())
    sealed = receive(sys.stdin.buffer)  # before detaching: the launcher's pipe ends with it
    try:
        reserve(paths)
    except OSError as exc:
        with contextlib.suppress(OSError):  # its stderr is on that full disk too
            os.write(2, f"interlock runner: no room for the attempt's records: {exc}\n".encode())
        return EX_TEMPFAIL
    detach()
    stop = StopRequest(paths.cancel_requested)
    for sig in STOP_SIGNALS:  # before the pid is published, so no SIGTERM finds us unprepared
        signal.signal(sig, stop)
    write_pid_file(paths.runner_pid, os.getpid())
    run(RunSpec.load(paths.spec), paths, stop, sealed).save(paths.result)
    return 0


def run(spec: RunSpec, paths: AttemptPaths, stop: StopRequest,
        sealed: Sealed | None = None) -> RunResult:
    sealed = sealed or Sealed()
    paths.outputs.touch()
    # The secret env joins the spec in memory only: spec.json on disk never held it.
    spec = replace(spec, env={**spec.env, **sealed.env})
    masker = sealed.masker()
    log = CappedLog(paths.log, spec.log_max_bytes, masker=masker)
    try:
        outcome = execute(spec, paths, stop, log)
    finally:
        log.close()
    if masker is not None:
        mask_files(paths, masker)
        outcome = replace(outcome, error=masker.text(outcome.error) if outcome.error else None)
    return outcome.result(log)


def mask_files(paths: AttemptPaths, masker: Any) -> None:
    """The command may have written a secret into any file of its attempt (its outputs, a
    robot's output.xml): each keeps it masked, before result.json says the attempt ended.
    Symlinks are neither read nor written through: a command run as another user could
    plant one to make the runner read or overwrite a file of its own choosing."""
    for path in sorted(p for p in paths.dir.rglob("*") if p.is_file() and not p.is_symlink()):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with open(fd, "rb") as f:
            data = f.read()
        if (clean := masker.data(data)) == data:
            continue
        tmp = path.with_name(f".{path.name}.masked")
        tmp.unlink(missing_ok=True)  # removes a planted symlink itself, never its target
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with open(fd, "wb") as f:
                f.write(clean)
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            tmp.unlink(missing_ok=True)
            overwrite(path, clean)


def overwrite(path: Path, clean: bytes) -> None:
    """A full disk has no room for a masked copy: the file is masked over its own blocks
    (a mask is never longer than what it hides, so no new block is needed); if it would
    not fit, the file is emptied. Either way no secret stays in it."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        if len(clean) > os.fstat(fd).st_size:
            os.ftruncate(fd, 0)
            return
        write_all(fd, clean)
        os.ftruncate(fd, len(clean))
    finally:
        os.close(fd)


def execute(spec: RunSpec, paths: AttemptPaths, stop: StopRequest, log: CappedLog) -> Outcome:
    if stop.requested:
        return Outcome(cancelled=True)
    started_at = now_iso()
    try:
        proc = spawn(spec, paths)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte the checks let through
        message = f"cannot start {spec.argv[0]!r}: {getattr(e, 'strerror', None) or e}"
        log.write(f"interlock: {message}\n".encode())
        return Outcome(started_at=started_at, error=message)
    write_pid_file(paths.child_pid, proc.pid)
    assert proc.stdout is not None
    pump = threading.Thread(target=pump_output, args=(proc.stdout, log), daemon=True)
    pump.start()
    timed_out, cancelled = supervise(proc, spec.timeout_s, stop)
    end_group(proc)
    pump.join(PUMP_DRAIN_S)
    code = proc.returncode
    return Outcome(started_at=started_at, exit_code=code if code >= 0 else None,
                   signal=-code if code < 0 else None, timed_out=timed_out, cancelled=cancelled)


def spawn(spec: RunSpec, paths: AttemptPaths) -> subprocess.Popen[bytes]:
    env = build_env(spec, os.environ, str(paths.outputs))
    user = Identity.lookup(spec.run_as) if spec.run_as else None  # UnknownUser is an OSError
    if user is not None:  # `run_as`: the user gets its own files of the attempt, no more
        user.hand_over(paths.dir)
        env.update(user.login_env(spec.env))
    # A new session makes the command the leader of its own group: one killpg stops
    # it and everything it started.
    return subprocess.Popen(spec.argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True,
                            **(user.popen_kwargs() if user else {}))


def pump_output(stream: IO[bytes], log: CappedLog) -> None:
    fd = stream.fileno()
    while chunk := os.read(fd, READ_BYTES):
        log.write(chunk)
    stream.close()


def supervise(proc: subprocess.Popen[bytes], timeout_s: float | None,
              stop: StopRequest) -> tuple[bool, bool]:
    """Wait for the command to exit, or for the timeout or a cancel: (timed_out, cancelled)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while proc.poll() is None:
        if stop.requested:
            return False, True
        if deadline is not None and time.monotonic() >= deadline:
            return True, False
        time.sleep(TICK_S)
    return False, False


def end_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop every process left in the command's group: SIGTERM, then SIGKILL after a grace."""
    pgid = proc.pid
    if proc.poll() is not None and not group_alive(pgid):
        return
    signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        proc.poll()  # reap the leader as soon as it exits
        if not group_alive(pgid):
            break
        time.sleep(TICK_S)
    else:
        signal_group(pgid, signal.SIGKILL)
    proc.wait()


if __name__ == "__main__":
    sys.exit(main())
