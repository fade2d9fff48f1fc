"""CPU seconds spent by one system's processes over a window, read from /proc.

A system is a process tree (the driver process this bench started and everything it
spawned, even processes that made their own session) plus the PostgreSQL backends
connected to the system's own database (found by their process title,
``postgres: <user> <database> ...``).

A process that exits inside the window is counted through its parent: the kernel adds
a reaped child's CPU (and its reaped children's) to the parent's ``cutime``/``cstime``,
so every tracked process is read as self + reaped children. A process reaped by a
parent outside the set (a PostgreSQL backend: the postmaster; an orphan: init) counts
up to its last sample (every ``every`` seconds).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class _Seen:
    start: float  # CPU seconds (self + reaped children) at window start; 0 if born after
    last: float
    parent: int
    backend: bool


@dataclass
class CpuMeter:
    root: int
    database: str | None = None
    every: float = 0.2
    _seen: dict[int, _Seen] = field(default_factory=dict)
    _window: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start_window(self) -> None:
        """Read every process of the system now; the window's CPU is counted from here."""
        with self._lock:
            self._seen.clear()
            for pid, (cpu, parent, backend) in self._scan().items():
                self._seen[pid] = _Seen(cpu, cpu, parent, backend)
            self._window = True
        self._thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)
        self._thread.start()

    def end_window(self) -> float:
        """CPU seconds the system used since ``start_window``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            now = self._scan()
            self._update(now)
            total = 0.0
            for pid, seen in self._seen.items():
                if pid in now:
                    total += seen.last - seen.start
                elif not seen.backend and seen.parent in self._seen:
                    total -= seen.start  # all of it is in the parent's reaped-children time
                else:
                    total += seen.last - seen.start  # reaped outside the set: last sample
            self._window = False
            return total

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            snapshot = self._scan()
            with self._lock:
                self._update(snapshot)

    def _update(self, snapshot: dict[int, tuple[float, int, bool]]) -> None:
        for pid, (cpu, parent, backend) in snapshot.items():
            seen = self._seen.get(pid)
            if seen is None:
                self._seen[pid] = _Seen(0.0, cpu, parent, backend)
            else:
                seen.last, seen.parent = cpu, parent

    def _scan(self) -> dict[int, tuple[float, int, bool]]:
        """{pid: (cpu seconds, parent pid, is a backend)} of the system's live processes."""
        stats: dict[int, tuple[float, int]] = {}
        children: dict[int, list[int]] = {}
        backends: set[int] = set()
        prefix = f" {self.database} " if self.database else None
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = stat_of(pid)
            if stat is None:
                continue
            stats[pid] = stat[:2]
            children.setdefault(stat[1], []).append(pid)
            if prefix and stat[2] == "postgres" and is_backend(pid, prefix):
                backends.add(pid)
        members: set[int] = set()
        todo = [self.root, *backends, *(p for p in self._seen if p in stats)]
        while todo:
            pid = todo.pop()
            if pid in stats and pid not in members:
                members.add(pid)
                todo.extend(children.get(pid, []))
        return {p: (stats[p][0], stats[p][1], p in backends) for p in members if p in stats}


def stat_of(pid: int) -> tuple[float, int, str] | None:
    """(utime + stime + cutime + cstime in seconds, parent pid, name), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2:].split()
    # fields[0] is field 3 (state): utime..cstime are fields 14-17, ppid is field 4
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / TICK, int(fields[1]), raw[raw.find("(") + 1:raw.rfind(")")]


def is_backend(pid: int, prefix: str) -> bool:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return title.startswith(b"postgres: ") and prefix.encode() in title[:200]
