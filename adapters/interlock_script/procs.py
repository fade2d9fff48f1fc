"""Process and process-group helpers: pid files, liveness, group signals.

A pid file holds the pid and, on Linux, the process start time, so a pid the kernel
has since given to another process is not mistaken for ours. Zombies count as dead:
an orphan is reparented to init, which in a container may never reap it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from interlock_script.layout import write_reserved

_PROC = Path("/proc")
_ZOMBIE_STATES = frozenset({"Z", "X"})


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start: int | None  # clock ticks since boot (/proc/PID/stat field 22); None off Linux

    def alive(self) -> bool:
        if not pid_alive(self.pid):
            return False
        return self.start is None or self.start == start_time(self.pid)


def write_pid_file(path: Path, pid: int) -> None:
    """Written aside and renamed (readers never see a half-written pid), into the room the
    launcher reserved for it (`layout.reserve`): a full disk does not stop the runner."""
    start = start_time(pid)
    write_reserved(path, f"{pid} {'' if start is None else start}\n", durable=False)


def read_pid_file(path: Path) -> PidRecord | None:
    try:
        parts = path.read_text(encoding="ascii").split()
    except FileNotFoundError:
        return None
    if not parts:
        return None
    return PidRecord(int(parts[0]), int(parts[1]) if len(parts) > 1 else None)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _stat_fields(pid)
    return stat is None or stat[0] not in _ZOMBIE_STATES


def start_time(pid: int) -> int | None:
    stat = _stat_fields(pid)
    return int(stat[19]) if stat is not None else None


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in the group."""
    if not _PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True
    return any(_in_live_group(pid, pgid) for pid in _all_pids())


def signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def detach() -> None:
    """Fork and let the parent exit at once: whoever started us can reap it right away,
    and we become an orphan that no worker process is responsible for."""
    if os.fork() > 0:
        os._exit(0)


def _in_live_group(pid: int, pgid: int) -> bool:
    stat = _stat_fields(pid)
    return stat is not None and stat[0] not in _ZOMBIE_STATES and int(stat[2]) == pgid


def _all_pids() -> list[int]:
    return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; None when unavailable or gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return text.rpartition(")")[2].split()
