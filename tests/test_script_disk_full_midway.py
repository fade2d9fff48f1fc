"""The attempts disk fills while a script node's command runs (found by the chaos soak's
fill-disk fault, `bench/soak.py`): the command ran, so its outcome is what the node records,
once, and the run goes on. The runner reserved the room for its own records (its pid files,
result.json) before the command started, so a full disk cannot make a job that ran look
lost (and, with `retry:`, run again); log lines it could not write are counted, and the
command is never blocked on its output pipe."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.tables import Attempt
from interlock.store.views import RunDetail
from tests import tmpfs
from tests.helpers import wait_run

NOISE_BYTES = 300_000  # several pipe buffers: a runner that stopped reading would hang it


def _flow(gate: Path, ledger: Path) -> str:
    command = (f"until [ -e {gate} ]; do sleep 0.05; done; "
               f"echo $INTERLOCK_ATTEMPT >> {ledger}; yes x | head -c {NOISE_BYTES}")
    return f"""
id: midway
namespace: tests.disk
nodes:
  work: {{uses: script, with: {{command: "{command}"}}}}
"""


@pytest.fixture
def tmpfs_attempts(sqlite_store: str) -> Iterator[Path]:
    with tmpfs.mounted(settings().attempts_dir, "2m") as where:
        yield where


def test_a_disk_that_fills_while_the_command_runs_keeps_its_outcome(
        tmpfs_attempts: Path, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    gate, ledger = tmp_path / "gate", tmp_path / "ledger"
    flow, _ = ops.register(_flow(gate, ledger))
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=embedded)
    deadline = time.monotonic() + 30
    while not list(tmpfs_attempts.glob("*/child.pid")):  # the command is running
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    # The command now writes its ledger line, its log and ends: the disk still full.
    detail = _ends_on_a_full_disk(tmpfs_attempts, gate, run_id)
    node = detail.nodes[0]
    assert detail.state is RunState.SUCCEEDED, (node.state, node.error)
    assert node.state is NodeState.SUCCEEDED
    assert ledger.read_text().split() == ["1"]  # ran once, recorded once, not retried
    assert "bytes of log lost: the attempts disk was full" in _remote_status(run_id)


def test_no_room_for_the_runners_records_starts_nothing_and_the_submit_is_tried_again(
        tmpfs_attempts: Path, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    filler = tmpfs.fill(tmpfs_attempts)
    with filler.open("r+b") as f:  # room for spec.json and the spawned marker, no more
        f.truncate(filler.stat().st_size - 2 * tmpfs.BLOCK)
    flow, _ = ops.register(_flow(tmp_path / "gate", ledger))
    (tmp_path / "gate").touch()
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=embedded)
    deadline = time.monotonic() + 30
    while "reserve" not in (status := _remote_status(run_id)):
        assert time.monotonic() < deadline, f"no refused launch: {status!r}"
        time.sleep(0.05)
    assert "is full" in status, status
    assert not ledger.exists()  # nothing ran
    assert not list(tmpfs_attempts.glob("*/spawned"))  # so the next submit launches afresh
    filler.unlink()
    detail = wait_run(run_id, timeout=60)
    assert detail.state is RunState.SUCCEEDED, detail.nodes[0].error
    assert ledger.read_text().split() == ["1"]


def _ends_on_a_full_disk(where: Path, gate: Path, run_id: str) -> RunDetail:
    """Fill the disk, open the command's gate and wait for the run; then free the room."""
    filler = tmpfs.fill(where)
    gate.touch()
    try:
        return wait_run(run_id, timeout=60)
    finally:
        filler.unlink()


def _remote_status(run_id: str) -> str:
    with session_scope() as session:
        return session.scalar(select(Attempt.remote_status).where(
            Attempt.run_id == run_id)) or ""


SECRET_VAR, SECRET = "ILK_TEST_DISK_SECRET", "disk-full-secret-7f3a9c"


def test_a_secret_the_command_wrote_is_masked_even_on_a_full_disk(
        tmpfs_attempts: Path, embedded: EmbeddedDispatcher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VAR, SECRET)
    gate = tmp_path / "gate"
    flow, _ = ops.register(f"""
id: masked
namespace: tests.disk
nodes:
  leak:
    uses: script
    with:
      command: "echo leak=$TOKEN >> $INTERLOCK_OUTPUT; until [ -e {gate} ]; do sleep 0.05; done"
      env: {{TOKEN: "{{{{ secret('{SECRET_VAR}') }}}}"}}
""")
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=embedded)
    deadline = time.monotonic() + 30
    while not any(SECRET in p.read_text() for p in tmpfs_attempts.glob("*/outputs")):
        assert time.monotonic() < deadline, "the command never wrote its outputs"
        time.sleep(0.05)
    # It ends while the disk is full: its outputs are masked all the same.
    detail = _ends_on_a_full_disk(tmpfs_attempts, gate, run_id)
    node = detail.nodes[0]
    assert detail.state is RunState.SUCCEEDED, (node.state, node.error)
    assert node.outputs == {"leak": "***"}
    for path in tmpfs_attempts.rglob("*"):
        assert not path.is_file() or SECRET not in path.read_text(errors="replace"), path
