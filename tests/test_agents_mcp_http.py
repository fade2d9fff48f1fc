"""MCP tools over streamable HTTP (`docs/agents.md`, "MCP tools"): the same real FastMCP
server as the stdio tests (`tests/mcp_servers/kyc_server.py`), run as a subprocess serving
streamable HTTP on a loopback port and declared as `mcp/kyc` with `url:` and a token
header by secret reference; the scripted OpenAI-wire model asks for the calls. SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.config.env import settings
from interlock.config.systems import parse_systems
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.states import RunState
from tests.agent_trail import assert_trail_complete
from tests.helpers import bearer, wait_run
from tests.scripted_llm import MODEL, ScriptedModel, final, serve, tool_calls
from tests.test_agents_mcp import BOTH, SERVER, TOKEN, finished, start, told
from tests.test_agents_mcp import _settled_freeze as settled_freeze
from tests.test_agents_mcp import _token_nowhere as token_nowhere

READ_ONLY = {"tools": BOTH, "read_only": ["lookup_customer"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HttpKyc:
    """One test's scripted model, and its MCP server over HTTP (started on demand)."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.state = tmp_path / "kyc"
        self.state.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.models: list[Any] = []
        self.server: subprocess.Popen[bytes] | None = None

    def start(self, script: list[Any], *, mode: str = "", serve_mcp: bool = True,
              **system: Any) -> ScriptedModel:
        ctx = serve(script)
        model = ctx.__enter__()
        self.models.append(ctx)
        if serve_mcp:
            self._serve(mode, system.pop("env", {}))
        mcp = {"url": self.url, "timeout": system.pop("timeout", 20),
               "headers": {"X-Kyc-Token": {"env": "TEST_KYC_TOKEN"}}, "mcp": system}
        systems = {"llm/scripted": {"url": model.base_url, "timeout": 5,
                                    "llm": {"models": [MODEL]}}, "mcp/kyc": mcp}
        path = self.tmp_path / "systems.yaml"
        path.write_text(json.dumps({"systems": systems}))
        self.monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))
        self.monkeypatch.setenv("TEST_KYC_TOKEN", TOKEN)
        settings.cache_clear()
        return model

    def _serve(self, mode: str, env: dict[str, str]) -> None:
        environ = {"PATH": os.environ.get("PATH", ""), "KYC_STATE_DIR": str(self.state),
                   "KYC_MODE": mode, "KYC_TOKEN": TOKEN, **env}
        with (self.tmp_path / "server.log").open("wb") as log:  # the child keeps its copy
            self.server = subprocess.Popen(  # noqa: S603  (our own test server)
                [sys.executable, str(SERVER), "http", str(self.port)], env=environ,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60  # Python and the mcp package, on a busy machine
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                assert self.server.poll() is None, (self.tmp_path / "server.log").read_text()
                time.sleep(0.1)
        raise AssertionError("the MCP server did not listen within 60s")

    def calls(self) -> list[str]:
        done = self.state / "calls"
        return done.read_text().split() if done.exists() else []

    def ran(self, what: str) -> bool:
        return (self.state / what).exists()

    def stop(self) -> None:
        for ctx in self.models:
            ctx.__exit__(None, None, None)
        if self.server is not None and self.server.poll() is None:
            os.killpg(self.server.pid, 9)  # its own group: started by this test
        if self.server is not None:
            self.server.wait(10)


@pytest.fixture
def kyc(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpKyc]:
    made = HttpKyc(tmp_path, monkeypatch)
    yield made
    made.stop()


def test_the_read_only_tool_runs_without_approval_and_the_header_is_sent(
        embedded: EmbeddedDispatcher, kyc: HttpKyc) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")])
    detail, node, trail = finished(embedded, READ_ONLY)
    assert detail.state is RunState.SUCCEEDED, node.error
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == BOTH
    [result] = told(model)
    # The header went to the server (it compares it with its own copy), and only there.
    assert json.loads(result)["content"] == ["customer c-17: risk low, token present"]
    tool = trail.steps[1]
    assert (tool.tool, tool.state, tool.approval_id, tool.error) == \
        ("lookup_customer", "done", None, None)
    assert kyc.calls() == ["lookup_customer"]
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])
    token_nowhere()


@pytest.mark.parametrize("mode", ["", "liar"])  # liar: it claims readOnlyHint, untrusted
def test_the_destructive_tool_waits_for_approval_then_runs_once(
        embedded: EmbeddedDispatcher, kyc: HttpKyc, mode: str) -> None:
    model = kyc.start([tool_calls(("freeze_account", {"account": "A1"})), final("ok")],
                      mode=mode)
    run_id = start(embedded, READ_ONLY)
    step = settled_freeze(run_id)
    assert (step.state, kyc.calls()) == ("waiting", [])  # parked, nothing called
    with TestClient(create_app(embedded)) as api:
        voted = api.post(f"/api/v1/approvals/{step.approval_id}/votes",
                         headers=bearer(Role.APPROVER, "tests.*", name="alice"),
                         json={"option": "approve", "inputs": {}, "comment": ""})
        assert voted.status_code == 200, voted.text
        detail = wait_run(run_id)
        assert detail.state is RunState.SUCCEEDED
        assert "account A1 frozen" in told(model)[0]
        assert kyc.calls() == ["freeze_account"]  # once
        assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                              decided={step.approval_id: "approved"}, client=api)


def test_a_server_down_at_the_start_fails_the_node_with_the_reason(
        embedded: EmbeddedDispatcher, kyc: HttpKyc) -> None:
    model = kyc.start([final("ok")], serve_mcp=False)
    detail = wait_run(start(embedded, READ_ONLY))
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert f"MCP server mcp/kyc could not be reached at {kyc.url}: ConnectError" \
        in (node.error or "")
    assert model.requests == []


def test_a_server_that_dies_mid_call_is_told_to_the_model(
        embedded: EmbeddedDispatcher, kyc: HttpKyc) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")],
                      mode="crash")
    began = time.monotonic()
    detail, node, trail = finished(embedded, READ_ONLY)
    assert detail.state is RunState.SUCCEEDED, node.error
    [result] = told(model)
    assert "MCP server mcp/kyc dropped the connection before it answered" in result
    assert time.monotonic() - began < 15  # known at once, not after the 20 s timeout
    assert trail.steps[1].error is not None and kyc.calls() == ["lookup_customer"]
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


@pytest.mark.parametrize("mode, system, said", [
    ("huge", {"max_output_bytes": 65_536, "env": {"KYC_RESULT_BYTES": "200000"}},
     "answered more than 65536 bytes (`mcp.max_output_bytes` of the system)"),
    ("huge", {"env": {"KYC_RESULT_BYTES": "30000"}}, "(cut: "),
    ("echo", {}, "debug token=***"),
])
def test_hostile_output_is_bounded_and_masked(embedded: EmbeddedDispatcher, kyc: HttpKyc,
                                              mode: str, system: dict[str, Any],
                                              said: str) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")],
                      mode=mode, **system)
    detail, node, _ = finished(embedded, READ_ONLY)
    assert detail.state is RunState.SUCCEEDED, node.error
    [result] = told(model)
    assert said in result and len(result) < 8300
    assert TOKEN not in result
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])
    token_nowhere()


@pytest.mark.parametrize("body, said", [
    ({"url": "http://127.0.0.1:1/mcp", "mcp": {"command": ["kyc"]}}, "not both"),
    ({"mcp": {}}, "not neither"),
    ({"url": "http://127.0.0.1:1/mcp", "mcp": {"env": {"A": "b"}}}, "for a stdio server"),
    ({"mcp": {"command": ["kyc"]}, "headers": {"X-A": "b"}}, "are for an HTTP server"),
    ({"url": "http://127.0.0.1:1/mcp", "headers": {"X-Kyc-Token": "literal"}, "mcp": {}},
     "carries a credential"),
])
def test_an_http_mcp_system_is_checked_when_the_systems_file_is_read(
        body: dict[str, Any], said: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_systems(json.dumps({"systems": {"mcp/kyc": body}}), "systems.yaml")
    assert said in str(raised.value)


def test_the_client_sends_nothing_but_to_the_declared_url(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server answering with a redirect elsewhere on its own host is not followed: the
    session cannot start, and the node would fail saying why."""
    import http.server
    import threading

    from interlock_agent import mcp_tools
    from interlock_agent.params import AgentParams

    from interlock.adapters import Rejected

    hits: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the stdlib's name)
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/mcp"
    path = tmp_path / "systems.yaml"
    path.write_text(json.dumps({"systems": {"mcp/kyc": {"url": url, "mcp": {}}}}))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))
    settings.cache_clear()
    params = AgentParams.model_validate({
        "system": "llm/scripted", "model": MODEL, "prompt": "p",
        "tools": [{"mcp": {"server": "mcp/kyc", "tools": ["lookup_customer"]}}]})
    try:
        with pytest.raises(Rejected) as raised:
            mcp_tools.expand(params)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert hits == ["/mcp"]  # /elsewhere was never asked for
    assert "/elsewhere" in str(raised.value)
