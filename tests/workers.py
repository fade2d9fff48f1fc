"""Real `interlock worker` processes for integration tests, each in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
from interlock_script.procs import read_pid_file

from interlock.config.env import settings
from tests.conftest import REDIS_URL

READY_MARK = "ready."


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited {self.proc.returncode}:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            if READY_MARK in self.log.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s:\n"
                           + self.log.read_text(errors="replace")[-3000:])

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (scripts run in sessions of their own)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)


@dataclass
class WorkerPool:
    env: dict[str, str]
    logs: Path
    workers: list[Worker] = field(default_factory=list)
    started: int = 0

    def start(self, concurrency: int = 4) -> Worker:
        self.started += 1
        name = f"w{self.started}@interlock-test"
        log = self.logs / f"worker-{self.started}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "interlock", "worker", "--concurrency", str(concurrency),
                 "--name", name, "--loglevel", "INFO"],
                env=self.env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        worker = Worker(name, proc, log)
        self.workers.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.proc.poll() is None]

    def stop_all(self) -> None:
        for worker in self.alive():
            worker.kill(signal.SIGTERM)


@contextmanager
def worker_pool(store_url: str, home: Path, count: int = 2,
                extra_env: dict[str, str] | None = None) -> Iterator[WorkerPool]:
    """``count`` workers on a test Redis database and a queue of their own, sharing the test
    store; this process's dispatch settings point at them until the block ends."""
    broker = REDIS_URL.rsplit("/", 1)[0] + "/13"
    flush_redis_db(broker)
    env = {**os.environ, "INTERLOCK_BROKER_URL": broker, "INTERLOCK_DATABASE_URL": store_url,
           "INTERLOCK_HOME": str(home), "INTERLOCK_QUEUE": f"q-{uuid.uuid4().hex[:8]}",
           "INTERLOCK_LEASE_SECONDS": "3", **(extra_env or {})}
    os.environ.update({k: env[k] for k in ("INTERLOCK_BROKER_URL", "INTERLOCK_QUEUE",
                                           "INTERLOCK_LEASE_SECONDS")})
    settings.cache_clear()
    workers = WorkerPool(env=env, logs=home)
    try:
        for _ in range(count):
            workers.start()
        for w in workers.workers:
            w.wait_ready()
        yield workers
    finally:
        workers.stop_all()
        kill_leftover_scripts(home / "attempts")
        flush_redis_db(broker)
        for key in ("INTERLOCK_BROKER_URL", "INTERLOCK_QUEUE", "INTERLOCK_LEASE_SECONDS"):
            os.environ.pop(key, None)
        settings.cache_clear()


def flush_redis_db(url: str) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def kill_leftover_scripts(attempts_dir: Path) -> None:
    """Stop script runners a test left behind, with their children (by pid, never by name).

    A pid file holds the pid and its start time (`interlock_script.procs`): a pid is only
    signalled while it is still that process, so a recycled pid is never hit.
    """
    for runner_file in attempts_dir.glob("*/runner.pid"):
        runner = read_pid_file(runner_file)
        if runner is None or not runner.alive() \
                or "interlock_script.runner" not in _cmdline(runner.pid):
            continue
        child = read_pid_file(runner_file.with_name("child.pid"))
        if child is not None and child.alive() and _parent(child.pid) == runner.pid:
            _killpg(child.pid)
        _killpg(runner.pid)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
