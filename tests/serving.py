"""A real `interlock serve` (or any `interlock` command) as a subprocess, for tests of the
CLI against the API: started in its own process group, stopped by it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# Variables a test sets itself: never inherited from the shell that runs pytest.
OWN = ("INTERLOCK_HOME", "INTERLOCK_DATABASE_URL", "INTERLOCK_BROKER_URL", "INTERLOCK_AUTH",
       "INTERLOCK_TOKEN", "INTERLOCK_API_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a command on the SQLite store under ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in OWN}
    env.update(INTERLOCK_HOME=str(home), COLUMNS="200",
               INTERLOCK_DATABASE_URL=f"sqlite:///{home / 'interlock.db'}", **extra)
    return env


def interlock(*args: str, env: dict[str, str],
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real command line; stdout and stderr kept apart."""
    return subprocess.run([sys.executable, "-m", "interlock", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


@contextmanager
def serving(env: dict[str, str], log: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """`interlock serve` on a free port; yields its base URL; stopped by process group."""
    port = free_port()
    with log.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "interlock", "serve", "--host", host,
                                 "--port", str(port)], env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(log.read_text())
                time.sleep(0.2)
            yield base
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
