"""Turn an attempt directory into an :class:`Observation`."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from interlock.adapters import Handle, NodeState, Observation, Rejected, settings
from interlock.adapters.paths import open_inside
from interlock_script.layout import AttemptPaths, checked_dir
from interlock_script.outputs import OutputsError, parse_outputs
from interlock_script.records import RunResult, RunSpec
from interlock_script.status import START_GRACE_S, RunnerStatus, runner_status

EXCERPT_CHARS = 2000
_EXCERPT_BYTES = EXCERPT_CHARS * 4  # enough bytes for 2000 characters of UTF-8


def paths_of(handle: Handle) -> AttemptPaths:
    """The handle's attempt directory, once checked to be under this worker's attempts
    directory (Rejected otherwise): every read, write and signal goes through here."""
    return AttemptPaths(checked_dir(settings().attempts_dir, handle.data.get("dir")))


def observe(handle: Handle) -> Observation:
    try:
        paths = paths_of(handle)
    except Rejected as e:
        if on_this_host(handle):
            raise
        # Another host's attempt under another INTERLOCK_HOME: not ours to read, and
        # calling it failed could start a second run. Its own host can end it.
        return Observation(handle=handle, state=NodeState.RUNNING,
                           remote_status=f"running on {handle.data['host']}; not readable "
                                         f"here: {e}")
    result = RunResult.load(paths.result)
    if result is not None:
        return finished(handle, paths, result)
    return unfinished(handle, paths)


def finished(handle: Handle, paths: AttemptPaths, result: RunResult) -> Observation:
    excerpt = log_tail(paths, paths.log) or None
    lost_note = (f"; {result.log_lost_bytes} bytes of log lost: the attempts disk was full"
                 if result.log_lost_bytes else "")

    def seen(state: NodeState, status: str, error: str | None = None) -> Observation:
        return Observation(handle=handle, state=state, remote_status=status + lost_note,
                           error=error, log_excerpt=excerpt)

    if result.cancelled:
        return seen(NodeState.CANCELLED, "cancelled", "cancelled")
    if result.timed_out:
        return seen(NodeState.TIMED_OUT, "timed out", f"timed out after {_timeout_text(paths)}")
    if result.error is not None:
        return seen(NodeState.FAILED, "failed to start", result.error)
    if result.signal is not None:
        return seen(NodeState.FAILED, f"signal {result.signal}",
                    f"killed by signal {result.signal} ({_signal_name(result.signal)})")
    if result.exit_code != 0:
        return seen(NodeState.FAILED, f"exited {result.exit_code}", f"exit code {result.exit_code}")
    try:
        outputs = parse_outputs(read_text(paths, paths.outputs, "outputs file"))
    except FileNotFoundError:
        outputs = {}
    except OutputsError as e:
        return seen(NodeState.FAILED, "exited 0", f"bad outputs file {paths.outputs}: {e}")
    return Observation(handle=handle, state=NodeState.SUCCEEDED,
                       remote_status="exited 0" + lost_note, outputs=outputs,
                       log_excerpt=excerpt)


def on_this_host(handle: Handle) -> bool:
    host = handle.data.get("host")
    return not host or host == socket.gethostname()


def unfinished(handle: Handle, paths: AttemptPaths) -> Observation:
    if not on_this_host(handle):
        # Its pids mean nothing here, and its directory may not even be visible: only
        # its own result.json can end it. Calling it LOST would invite a second run.
        return Observation(handle=handle, state=NodeState.RUNNING,
                           remote_status=f"running on {handle.data['host']}")
    if not paths.dir.is_dir():
        return lost(handle, f"attempt directory {paths.dir} is gone")
    status = runner_status(paths)
    if not status.gone:
        return Observation(handle=handle, state=NodeState.RUNNING, remote_status=status.value)
    # The runner may have written its result and exited since we last looked.
    result = RunResult.load(paths.result)
    if result is not None:
        return finished(handle, paths, result)
    return lost(handle, _lost_reason(paths, status))


def lost(handle: Handle, error: str) -> Observation:
    attempt = paths_of(handle)
    return Observation(handle=handle, state=NodeState.LOST, remote_status="lost", error=error,
                       log_excerpt=log_tail(attempt, attempt.log) or None)


def read_text(attempt: AttemptPaths, path: Path, what: str) -> str:
    """A file of the attempt, read only if it resolves inside the attempt's directory (a
    script could have replaced it with a symlink to a file it should not expose)."""
    with open_inside(attempt.dir, path, what) as f:
        return f.read().decode("utf-8", errors="replace")


def log_tail(attempt: AttemptPaths, path: Path) -> str:
    try:
        with open_inside(attempt.dir, path, "log file") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - _EXCERPT_BYTES))
            data = f.read()
    except FileNotFoundError:
        return ""
    return data.decode("utf-8", errors="replace")[-EXCERPT_CHARS:]


def _lost_reason(paths: AttemptPaths, status: RunnerStatus) -> str:
    if status is RunnerStatus.DEAD:
        pid = paths.runner_pid.read_text(encoding="ascii").split()[0]
        why = f"runner process {pid} exited without a result"
    elif paths.spawned.exists():
        why = f"runner never started (no pid file after {START_GRACE_S:g}s)"
    else:
        why = "runner was never spawned"
    crash = _last_line(paths, paths.runner_err)
    detail = f"; runner said: {crash}" if crash else ""
    return f"{why}{detail}; see {paths.log} and {paths.runner_err}"


def _last_line(attempt: AttemptPaths, path: Path) -> str:
    try:
        lines = read_text(attempt, path, "runner error file").strip().splitlines()
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def _timeout_text(paths: AttemptPaths) -> str:
    try:
        timeout_s = RunSpec.load(paths.spec).timeout_s
    except (OSError, ValueError, TypeError):
        timeout_s = None
    return "its timeout" if timeout_s is None else f"{timeout_s:g}s"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"
