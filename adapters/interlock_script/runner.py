"""`python -m interlock_script.runner DIR`: run one attempt's command, apart from any worker.

The runner outlives the worker that started it: it detaches at once, runs the
command in a process group of its own, keeps its log, enforces the timeout,
obeys a cancel (SIGTERM), and last of all writes ``result.json``. Workers only ever
read this directory, so a worker that dies mid-attempt loses nothing.

Whatever is left in the command's process group when the command ends is stopped
too: leftovers would hold the log pipe open and outlive timeouts and cancels.
Anything meant to outlive its step must start a session of its own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

from interlock_script.caplog import CappedLog
from interlock_script.environment import build_env
from interlock_script.layout import AttemptPaths
from interlock_script.procs import detach, group_alive, signal_group, write_pid_file
from interlock_script.records import RunResult, RunSpec, now_iso

TICK_S = 0.05          # how often the supervisor looks at the child, the clock and a cancel
KILL_GRACE_S = 5.0     # between SIGTERM and SIGKILL to the command's group
PUMP_DRAIN_S = 2.0     # how long to wait for the last output once the group is gone
READ_BYTES = 64 * 1024
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


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

    def result(self, log_truncated_bytes: int) -> RunResult:
        return RunResult(exit_code=self.exit_code, signal=self.signal, timed_out=self.timed_out,
                         cancelled=self.cancelled, started_at=self.started_at,
                         finished_at=now_iso(), error=self.error,
                         log_truncated_bytes=log_truncated_bytes)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m interlock_script.runner ATTEMPT_DIR", file=sys.stderr)
        return 2
    paths = AttemptPaths(Path(args[0]).resolve())
    detach()
    stop = StopRequest(paths.cancel_requested)
    for sig in STOP_SIGNALS:  # before the pid is published, so no SIGTERM finds us unprepared
        signal.signal(sig, stop)
    write_pid_file(paths.runner_pid, os.getpid())
    run(RunSpec.load(paths.spec), paths, stop).save(paths.result)
    return 0


def run(spec: RunSpec, paths: AttemptPaths, stop: StopRequest) -> RunResult:
    paths.outputs.touch()
    log = CappedLog(paths.log, spec.log_max_bytes)
    try:
        outcome = execute(spec, paths, stop, log)
    finally:
        log.close()
    return outcome.result(log.dropped)


def execute(spec: RunSpec, paths: AttemptPaths, stop: StopRequest, log: CappedLog) -> Outcome:
    if stop.requested:
        return Outcome(cancelled=True)
    started_at = now_iso()
    try:
        proc = spawn(spec, paths)
    except OSError as e:
        message = f"cannot start {spec.argv[0]!r}: {e.strerror or e}"
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
    # A new session makes the command the leader of its own group: one killpg stops
    # it and everything it started.
    return subprocess.Popen(spec.argv, cwd=spec.cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, close_fds=True)


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
