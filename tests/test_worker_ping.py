"""`interlock worker-ping`: a real worker answers through the broker; a stopped (SIGSTOP)
worker and a name nobody has do not, and the command says so with exit 1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers import WorkerPool, worker_pool


@pytest.fixture
def pool(store_url: str, tmp_path: Path) -> Iterator[WorkerPool]:
    if not store_url.startswith("postgresql"):
        pytest.skip("workers share a PostgreSQL store")
    with worker_pool(store_url, tmp_path, count=1) as workers:
        yield workers


def _ping(pool: WorkerPool, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interlock", "worker-ping", *args],
                          env=pool.env, capture_output=True, text=True, timeout=60)


def test_a_live_worker_answers_and_a_frozen_or_missing_one_does_not(pool: WorkerPool) -> None:
    worker = pool.workers[0]
    alive = _ping(pool, worker.name)
    assert alive.returncode == 0 and f"{worker.name}: pong" in alive.stdout, alive.stderr
    missing = _ping(pool, "nobody@nowhere", "--timeout", "1")
    assert missing.returncode == 1 and "did not answer within 1s" in missing.stderr
    worker.proc.send_signal(signal.SIGSTOP)  # alive as a process, but not working
    try:
        started = time.monotonic()
        frozen = _ping(pool, worker.name, "--timeout", "2")
        assert frozen.returncode == 1 and time.monotonic() - started < 30
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    assert _ping(pool, worker.name).returncode == 0  # and back
