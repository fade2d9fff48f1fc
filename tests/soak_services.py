"""The chaos soak's processes (`bench/soak.py`): a private Redis, a private PostgreSQL
cluster (`initdb` into a temporary folder, on a free loopback port), and Interlock's own
processes (workers, schedulers, APIs), each in its own process group and stopped by that
group's id, never by name."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from tests.serving import free_port

READY_MARK = "ready."  # what a Celery worker logs once it consumes


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found and shutil.which(name) is None:
        raise RuntimeError(f"{name} not found under /usr/lib/postgresql/*/bin nor on PATH")
    return found[-1] if found else str(shutil.which(name))


def services_missing() -> str | None:
    """Why the soak cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "needs the redis-server binary"
    try:
        _pg_bin("initdb")
    except RuntimeError as exc:
        return str(exc)
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runs initdb as the postgres user through runuser, which is missing"
    return None


class PrivateRedis:
    """A redis-server of the soak's own, no persistence: a restart loses every message."""

    def __init__(self, home: Path):
        self.port, self.home = free_port(), home
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.home)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the soak's redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


class PrivatePostgres:
    """A PostgreSQL cluster of the soak's own: `initdb` into a temporary folder owned by the
    postgres OS user (initdb refuses root), served on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="interlock-soak-pg-"))
        self.data, self.log = self.root / "data", self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def _ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} "
                   "-c fsync=off -c max_connections=300")
        subprocess.run(self._as_owner(_pg_bin("pg_ctl"), "-D", str(self.data), "-l",
                                      str(self.log), "-w", "-t", "60", "-o", options, *args),
                       check=True, capture_output=True, timeout=90)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres")
        subprocess.run(self._as_owner(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust",
                                      "-U", "postgres", "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True, timeout=120)
        self._ctl("start")

    def down(self) -> None:
        """A fast shutdown (what `pg_ctl restart -m fast` does first): sessions are ended."""
        self._ctl("-m", "fast", "stop")

    def up(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._ctl("-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Proc:
    """One Interlock process, the leader of its own process group."""

    role: str
    index: int
    argv: list[str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0

    @property
    def name(self) -> str:
        return f"{self.role}{self.index}"

    def start(self, env: dict[str, str]) -> None:
        self.generation += 1
        with self.log.open("ab") as sink:
            sink.write(f"\n=== start #{self.generation} at {time.time():.3f}\n".encode())
            sink.flush()
            self.proc = subprocess.Popen(self.argv, env=env, stdout=sink,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM (SIGCONT first, in case it is stopped), then SIGKILL after 20 s."""
        if not self.alive():
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            assert self.proc is not None
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            if self._ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def _ready(self) -> bool:
        if self.role == "worker":
            current = self.log.read_text(errors="replace").rsplit("=== start #", 1)[-1]
            return READY_MARK in current
        if self.role == "api":
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/healthz",
                                 timeout=1).status_code == 200
            except httpx.TransportError:
                return False
        return True  # a scheduler has nothing to wait for

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@dataclass
class Fleet:
    """2 workers, 2 schedulers, 2 APIs (by default) sharing one env."""

    env: dict[str, str]
    logs: Path
    procs: list[Proc] = field(default_factory=list)

    def add(self, role: str, count: int) -> None:
        for index in range(1, count + 1):
            log = self.logs / f"{role}{index}.log"
            argv = [sys.executable, "-m", "interlock"]
            port = None
            if role == "worker":
                argv += ["worker", "--concurrency", "4", "--name", f"soak-w{index}@soak"]
            elif role == "scheduler":
                argv += ["scheduler"]
            else:
                port = free_port()
                argv += ["serve", "--host", "127.0.0.1", "--port", str(port)]
            self.procs.append(Proc(role, index, argv, log, port))

    def of(self, role: str) -> list[Proc]:
        return [p for p in self.procs if p.role == role]

    def start_all(self) -> None:
        for proc in self.procs:
            proc.start(self.env)
        for proc in self.procs:
            proc.wait_ready()

    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p.port}" for p in self.of("api")]

    def revive(self) -> list[str]:
        """Start again whatever is not running (a worker that died on its own, say)."""
        dead = [p for p in self.procs if not p.alive()]
        for proc in dead:
            proc.start(self.env)
        for proc in dead:
            proc.wait_ready()
        return [p.name for p in dead]

    def stop_all(self) -> None:
        for proc in self.procs:
            proc.stop()
