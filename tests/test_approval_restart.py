"""A waiting gate holds no worker and survives restarts of everything: real `interlock serve`
and `interlock worker` processes on Redis and PostgreSQL, all killed while a run waits for
two people, the votes cast through a new API while no worker runs, the node submitted once
the workers are back, exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.operations import runs as ops
from interlock.store.db import session_scope
from tests.serving import serving
from tests.test_workers import pool  # noqa: F401  (the fixture: two real workers)
from tests.workers import WorkerPool

pytestmark = pytest.mark.integration
NS = "bank.restart"
API = "/api/v1"


def flow(ledger: Path) -> str:
    return f"""
id: restart
namespace: {NS}
nodes:
  release:
    uses: script
    with: {{command: "echo released >> {ledger}"}}
    approval:
      subject: Release after the restart
      rules: [{{group: compliance}}, {{group: risk}}]
"""


def token(name: str, role: Role, *groups: str) -> dict[str, str]:
    with session_scope() as session:
        made, _ = tokens.create(session, name=name, role=role, namespace=NS,
                                created_by="tests", groups=groups)
    return {"Authorization": f"Bearer {made}"}


def wait_json(url: str, headers: dict[str, str], ready: object, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(url, headers=headers, timeout=10).json()
        if ready(body):  # type: ignore[operator]
            return body
        assert time.monotonic() < deadline, f"{url}: {body}"
        time.sleep(0.1)


@pytest.fixture
def api_env(pool: WorkerPool) -> Iterator[dict[str, str]]:  # noqa: F811
    yield {**pool.env, "INTERLOCK_AUTH": "on"}


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_waiting_gate_survives_killing_the_api_and_every_worker(
        store_url: str, pool: WorkerPool, api_env: dict[str, str],  # noqa: F811
        tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    ops.register(flow(ledger), actor="user:author")
    starter = token("starter", Role.LAUNCHER)
    reader = token("reader", Role.VIEWER)
    with serving(api_env, tmp_path / "api-1.log") as base:
        run_id = httpx.post(f"{base}{API}/runs", json={"namespace": NS, "flow_id": "restart"},
                            headers=starter, timeout=10).json()["id"]
        asked = wait_json(f"{base}{API}/approvals?run_id={run_id}", reader, bool)
    request_id = asked[0]["id"]  # type: ignore[index]
    for worker in pool.alive():  # everything down while the gate waits
        worker.kill(signal.SIGKILL)

    with serving(api_env, tmp_path / "api-2.log") as base:
        for name, group in (("cara", "compliance"), ("rick", "risk")):
            voted = httpx.post(f"{base}{API}/approvals/{request_id}/votes",
                               json={"option": "approve", "comment": "after the restart"},
                               headers=token(name, Role.APPROVER, group), timeout=10)
            assert voted.status_code == 200, voted.text
        assert voted.json()["state"] == "approved"
        assert not ledger.exists()  # no worker: nothing submitted yet, nothing lost either
        for _ in range(2):
            pool.start()
        for worker in pool.alive():
            worker.wait_ready()
        done = wait_json(f"{base}{API}/runs/{run_id}", reader,
                         lambda b: b["state"] in {"succeeded", "failed"}, timeout=90)
    assert done["state"] == "succeeded", done  # type: ignore[index]
    assert ledger.read_text().splitlines() == ["released"]
