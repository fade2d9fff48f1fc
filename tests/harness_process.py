"""What the Airflow and Dagster harnesses share: a cached virtualenv per peer, free ports,
log tails, and stopping a server's whole session by its ids (never by name).

A server runs in its own session (``start_new_session=True``), so its pid is also its
session id; everything it spawns, even processes that made their own group, is found in
/proc by that session id.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

READY_MARKER = ".interlock-ready"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def cache_dir() -> Path:
    return Path(os.environ.get("INTERLOCK_TEST_CACHE", "~/.cache/interlock")).expanduser()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` of a log, colour codes removed."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return _ANSI.sub("", "\n".join(text.splitlines()[-lines:]))


def ensure_venv(name: str, requirements: Sequence[str], check: str, *,
                error: type[Exception]) -> Path:
    """The cached virtualenv ``<cache>/<name>`` with ``requirements``, installed if needed.

    ``<venv>/.interlock-ready`` is written only after the install and ``check`` (Python code
    that exits non-zero when the versions are wrong) succeed; without it the venv is rebuilt
    from scratch. An fcntl lock serialises concurrent pytest processes.
    """
    root = cache_dir()
    venv = root / name
    marker = venv / READY_MARKER
    if marker.is_file():
        return venv
    root.mkdir(parents=True, exist_ok=True)
    install_log = root / f"{name}.install.log"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():  # another process finished the install while we waited
            return venv
        if venv.exists():
            shutil.rmtree(venv)
        started = time.monotonic()
        with open(install_log, "wb") as out:
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check",
                 *requirements],
                [str(venv / "bin" / "python"), "-c", check],
            ]
            for cmd in steps:
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, check=False)
                if result.returncode != 0:
                    raise error(f"installing {' '.join(requirements)} failed at {cmd[:3]} "
                                f"(exit {result.returncode}); log {install_log}:\n"
                                f"{tail(install_log)}")
        marker.write_text(f"{' '.join(requirements)} installed in "
                          f"{time.monotonic() - started:.0f}s at {datetime.now(UTC).isoformat()}\n")
    return venv


def venv_environment(venv: Path, own_prefix: str) -> dict[str, str]:
    """This process's environment for a server run from ``venv``: without our test and
    Python settings or the peer's own (``own_prefix``) variables, the venv's bin first."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith((own_prefix, "INTERLOCK_", "PYTEST_"))
            and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    keep["PATH"] = f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    keep["VIRTUAL_ENV"] = str(venv)
    return keep


def _proc_stat(pid: str) -> tuple[str, int, int] | None:
    """(state, pgid, sid) of a process from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[3])


def live_pids(sid: int, *, pgid: int | None = None) -> list[int]:
    """Live (non-zombie) processes of session ``sid`` (and of process group ``pgid`` if
    given): with ``sid`` = a server's pid, everything it spawned."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(entry)
            if stat and stat[2] == sid and stat[0] != "Z" and pgid in (None, stat[1]):
                pids.append(int(entry))
    return pids


def session_pids(sid: int) -> list[int]:
    """Live processes of the session of a server started with pid ``sid``."""
    return live_pids(sid)


def stop_session(proc: subprocess.Popen[bytes], *, timeout: float, straggler_grace: float,
                 error: type[Exception]) -> None:
    """SIGTERM the server's process group and the rest of its session, wait, then SIGKILL.

    Once the main group has exited, what is left of the session (an Airflow task or a
    Dagster run worker in its own group, which may ignore SIGTERM once its parent is gone)
    gets only ``straggler_grace`` seconds before SIGKILL.
    """
    sid = proc.pid
    _signal(sid, signal.SIGTERM)
    main_gone = _wait(lambda: proc.poll() is not None and not live_pids(sid, pgid=sid), timeout)
    all_gone = main_gone and _wait(lambda: not live_pids(sid), straggler_grace)
    if not all_gone:
        _signal(sid, signal.SIGKILL)
        if not _wait(lambda: proc.poll() is not None and not live_pids(sid), 10.0):
            raise error(f"processes of session {sid} survived SIGKILL: {live_pids(sid)}")
    proc.wait()


def _signal(sid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in live_pids(sid):  # any process that made its own group, same session
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _wait(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


class Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: set[Stoppable] = set()
_LIVE_LOCK = threading.Lock()


def track(server: Stoppable) -> None:
    """Stop ``server`` at interpreter exit if the test session did not (an interrupted run)."""
    with _LIVE_LOCK:
        _LIVE.add(server)


def untrack(server: Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(server)


@atexit.register
def _stop_all() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
