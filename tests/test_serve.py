"""`interlock serve` as a real process: the API answers on loopback and runs flows."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import bearer, write_flow

FLOW = """
id: served
namespace: tests.serve
inputs: {who: {type: string, required: true}}
nodes:
  greet:
    uses: script
    with: {command: "echo greeting={{ inputs.who }} > $INTERLOCK_OUTPUT"}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(sqlite_store: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "interlock", "serve", "--port", str(port)],
                            env={**os.environ}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise RuntimeError((tmp_path / "serve.log").read_text())
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def test_serve_runs_a_flow_over_http(server: str, tmp_path: Path) -> None:
    source = write_flow(tmp_path, FLOW).read_text()
    assert httpx.get(f"{server}/healthz").json()["dispatch"] == "EmbeddedDispatcher"
    assert httpx.post(f"{server}/api/v1/flows", json={"source": source}).status_code == 401
    auth = bearer(name="server-test")  # in the store the server uses
    assert httpx.post(f"{server}/api/v1/flows", json={"source": source},
                      headers=auth).status_code == 201
    started = httpx.post(f"{server}/api/v1/runs", headers=auth, json={
        "namespace": "tests.serve", "flow_id": "served", "inputs": {"who": "ada"}})
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 30
    run = started.json()
    while run["state"] not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
        run = httpx.get(f"{server}/api/v1/runs/{run_id}", headers=auth).json()
    assert run["state"] == "succeeded"
    assert run["nodes"][0]["outputs"] == {"greeting": "ada"}
    schema = httpx.get(f"{server}/openapi.json").json()
    assert "/api/v1/runs/{run_id}/retry" in schema["paths"]
    assert httpx.get(f"{server}/api/v1/runs/nope", headers=auth).status_code == 404
