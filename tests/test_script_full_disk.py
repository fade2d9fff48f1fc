"""A script node whose attempts folder is on a full disk (a tiny tmpfs filled to ENOSPC)
is not failed: its submit is tried again with a backoff, and once there is room again the
node runs and the run succeeds. Found by the chaos soak's disk fault (`bench/soak.py`): a
full disk used to fail the node as an adapter error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.store.db import session_scope
from interlock.store.tables import Attempt
from tests import tmpfs
from tests.helpers import wait_run

FLOW = """
id: full-disk
namespace: tests.disk
nodes:
  write: {uses: script, with: {command: ["sh", "-c", "echo wrote=yes >> $INTERLOCK_OUTPUT"]}}
"""


@pytest.fixture
def full_attempts_dir(sqlite_store: str) -> Iterator[Path]:
    with tmpfs.mounted(settings().attempts_dir, "256k") as where:
        yield tmpfs.fill(where)


def test_a_full_attempts_disk_delays_the_node_and_it_runs_once_there_is_room(
        full_attempts_dir: Path, embedded: EmbeddedDispatcher) -> None:
    flow, _ = ops.register(FLOW)
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=embedded)
    deadline = time.monotonic() + 30
    while True:  # the submit fails on the full disk and is tried again, not failed
        with session_scope() as session:
            attempt = session.scalar(select(Attempt).where(Attempt.run_id == run_id))
            status = (attempt.remote_status or "") if attempt else ""
            tries = attempt.submit_tries if attempt else 0
        if tries >= 2:
            break
        assert time.monotonic() < deadline, f"no retried submit: {status!r}"
        time.sleep(0.1)
    assert "is full" in status and "No space left" in status, status
    assert ops.get_run(run_id).state.value == "running"
    full_attempts_dir.unlink()  # room again
    detail = wait_run(run_id, timeout=90)
    assert detail.state.value == "succeeded", [(n.id, n.error) for n in detail.nodes]
    assert detail.nodes[0].outputs == {"wrote": "yes"}
