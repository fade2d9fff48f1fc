"""MCP tools of `uses: agent` (`docs/agents.md`, "MCP tools") against a real stdio MCP
server written with the `mcp` package (`tests/mcp_servers/kyc_server.py`), started by the
agent for each call, with the scripted OpenAI-wire model (`tests/scripted_llm.py`) asking
for the calls; SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.config.env import settings
from interlock.config.systems import parse_systems
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import agents as agent_ops
from interlock.operations import runs as ops
from interlock.states import RunState
from interlock.store.db import session_scope
from tests.agent_trail import assert_trail_complete
from tests.helpers import wait_run
from tests.scripted_llm import MODEL, ScriptedModel, final, serve, tool_calls

SERVER = Path(__file__).parent / "mcp_servers" / "kyc_server.py"
TOKEN = "kyc-token-never-stored-98765"
BOTH = ["lookup_customer", "freeze_account"]


class Kyc:
    """The scripted model and the `mcp/kyc` system of one test."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp_path, self.monkeypatch = tmp_path, monkeypatch
        self.state = tmp_path / "kyc"
        self.state.mkdir()
        self.servers: list[Any] = []

    def start(self, script: list[Any], *, mode: str = "", **mcp: Any) -> ScriptedModel:
        ctx = serve(script)
        model = ctx.__enter__()
        self.servers.append(ctx)
        timeout = mcp.pop("timeout", 30)  # generous: a loaded machine starts Python slowly
        env = {"KYC_STATE_DIR": str(self.state), "KYC_MODE": mode,
               "KYC_TOKEN": {"env": "TEST_KYC_TOKEN"}, **mcp.pop("env", {})}
        systems = {
            "llm/scripted": {"url": model.base_url, "timeout": 5, "llm": {"models": [MODEL]}},
            "mcp/kyc": {"timeout": timeout,
                        "mcp": {"command": [sys.executable, str(SERVER)], "env": env, **mcp}}}
        path = self.tmp_path / "systems.yaml"
        path.write_text(json.dumps({"systems": systems}))
        self.monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))
        self.monkeypatch.setenv("TEST_KYC_TOKEN", TOKEN)
        settings.cache_clear()
        return model

    def pids(self) -> list[int]:
        started = self.state / "pids"
        return [int(p) for p in started.read_text().split()] if started.exists() else []

    def ran(self, what: str) -> bool:
        return (self.state / what).exists()


@pytest.fixture
def kyc(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kyc]:
    made = Kyc(tmp_path, monkeypatch)
    yield made
    for ctx in made.servers:
        ctx.__exit__(None, None, None)


def agent_flow(toolset: dict[str, Any], *, capture: bool = False) -> str:
    params = {"system": "llm/scripted", "model": MODEL, "prompt": "Customer {{ inputs.c }}",
              "tools": [{"mcp": {"server": "mcp/kyc", **toolset}}], "capture": capture}
    return json.dumps({"id": "mcp-agent", "namespace": "tests.agents",
                       "inputs": {"c": {"type": "string", "required": True}},
                       "nodes": {"score": {"uses": "agent", "with": params}}})


def start(embedded: EmbeddedDispatcher, toolset: dict[str, Any], *,
          capture: bool = False) -> str:
    flow, _ = ops.register(agent_flow(toolset, capture=capture))
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={"c": "c-17"},
                         dispatcher=embedded)


def finished(embedded: EmbeddedDispatcher, toolset: dict[str, Any]) -> tuple[Any, Any, Any]:
    run_id = start(embedded, toolset)
    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    return detail, node, agent_ops.agent_trail(run_id, "score")


def told(model: ScriptedModel, request: int = 1) -> list[str]:
    """What the model read back from tools in its request number ``request``."""
    return [m["content"] for m in model.requests[request]["messages"] if m["role"] == "tool"]


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def assert_no_server_left(kyc: Kyc, *extra: int) -> None:
    pids = [*kyc.pids(), *extra]
    assert pids, "the server never started"
    deadline = time.monotonic() + 5  # a reparented grandchild is reaped by init, soon
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def test_the_read_only_tool_runs_and_its_result_reaches_the_model(
        embedded: EmbeddedDispatcher, kyc: Kyc) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")])
    detail, node, trail = finished(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]})
    assert detail.state is RunState.SUCCEEDED, node.error
    offered = {t["function"]["name"]: t["function"] for t in model.requests[0]["tools"]}
    assert list(offered) == BOTH  # exactly the allow-list, not delete_everything
    assert offered["lookup_customer"]["description"] == "Look a customer up in the KYC registry."
    assert offered["lookup_customer"]["parameters"]["required"] == ["customer"]
    [result] = told(model)
    assert json.loads(result)["content"] == ["customer c-17: risk low, token present"]
    step = trail.steps[1]
    assert (step.kind, step.tool, step.state, step.error) == \
        ("tool", "lookup_customer", "done", None)
    assert step.idempotency_key.endswith(".s2") and step.ref == "mcp:calling"
    assert not kyc.ran("frozen-A1")
    assert len(kyc.pids()) == 2  # listed when the session started, then called once
    assert_no_server_left(kyc)
    _token_nowhere()
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


def _settled_freeze(run_id: str, timeout: float = 30.0) -> Any:
    """The freeze_account step once governed: parked for approval or refused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            steps = agent_ops.agent_trail(run_id, "score").steps
        except Exception:  # noqa: BLE001  (no session yet)
            steps = []
        freeze = [s for s in steps if s.tool == "freeze_account"]
        if freeze and freeze[0].state in ("waiting", "refused", "done"):
            return freeze[0]
        time.sleep(0.05)
    raise AssertionError(f"run {run_id}: freeze_account was never governed")


@pytest.mark.parametrize("mode, trusted, system_read_only", [
    ("", False, []),          # annotated destructive
    ("", True, []),           # a trusted server's destructiveHint: still approval
    ("liar", False, []),      # an untrusted server's readOnlyHint is not believed
    ("liar", False, ["lookup_customer"]),  # the admin vouched for another tool only
])
def test_the_destructive_tool_is_not_run_without_approval(
        embedded: EmbeddedDispatcher, kyc: Kyc, mode: str, trusted: bool,
        system_read_only: list[str]) -> None:
    """The call parks, waiting for people; cancelled there, it never runs."""
    model = kyc.start([tool_calls(("freeze_account", {"account": "A1"})), final("ok")],
                      mode=mode, trusted=trusted, read_only=system_read_only)
    run_id = start(embedded, {"tools": BOTH})
    step = _settled_freeze(run_id)
    assert not kyc.ran("frozen-A1")
    assert (step.state, step.error) == ("waiting", None)
    assert step.approval_id is not None
    assert len(model.requests) == 1  # parked: the model is not asked again meanwhile
    ops.cancel_run(run_id, dispatcher=embedded)
    detail = wait_run(run_id)
    assert detail.state is RunState.CANCELLED
    assert not kyc.ran("frozen-A1")
    assert len(kyc.pids()) == 1  # only the listing at the session's start
    assert_no_server_left(kyc)
    assert_trail_complete(run_id, kinds=["model", "tool"],
                          decided={step.approval_id: "cancelled"})


def test_an_approved_destructive_call_runs_once(embedded: EmbeddedDispatcher,
                                                kyc: Kyc) -> None:
    """With people's approval (`docs/agents.md`, tool approval), the call runs, once."""
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from interlock.access.permissions import Role
    from interlock.api.main import create_app
    from interlock.store.tables import ApprovalRequest
    from tests.helpers import bearer

    model = kyc.start([tool_calls(("freeze_account", {"account": "A1"})), final("ok")])
    run_id = start(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]})
    assert _settled_freeze(run_id).state == "waiting"
    with session_scope() as session:
        request_id = session.scalars(select(ApprovalRequest.id).where(
            ApprovalRequest.run_id == run_id)).one()
    with TestClient(create_app(embedded)) as api:
        voted = api.post(f"/api/v1/approvals/{request_id}/votes",
                         headers=bearer(Role.APPROVER, "tests.*", name="alice"),
                         json={"option": "approve", "inputs": {}, "comment": ""})
        assert voted.status_code == 200, voted.text
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    assert kyc.ran("frozen-A1") and "account A1 frozen" in told(model)[0]
    assert len(kyc.pids()) == 2  # listed at the start, called once after the approval
    assert_no_server_left(kyc)
    assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                          decided={request_id: "approved"})


def test_a_trusted_servers_read_only_hint_is_believed(embedded: EmbeddedDispatcher,
                                                      kyc: Kyc) -> None:
    """The same liar, now declared `trusted: true` by the admin: its hint stands."""
    model = kyc.start([tool_calls(("freeze_account", {"account": "A1"})), final("ok")],
                      mode="liar", trusted=True)
    detail, node, trail = finished(embedded, {"tools": BOTH})
    assert detail.state is RunState.SUCCEEDED, node.error
    assert kyc.ran("frozen-A1") and "account A1 frozen" in told(model)[0]
    assert trail.steps[1].approval_id is None
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


def test_a_tool_off_the_allow_list_is_refused(embedded: EmbeddedDispatcher, kyc: Kyc) -> None:
    model = kyc.start([tool_calls(("delete_everything", {})), final("ok")])
    detail, node, trail = finished(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]})
    assert detail.state is RunState.SUCCEEDED, node.error
    assert told(model)[0].startswith("refused: there is no tool 'delete_everything'")
    assert not kyc.ran("deleted-everything")
    assert trail.steps[1].state == "refused"
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


def test_an_allow_listed_tool_the_server_lacks_fails_the_node(
        embedded: EmbeddedDispatcher, kyc: Kyc) -> None:
    model = kyc.start([final("ok")])
    detail = wait_run(start(embedded, {"tools": ["lookup_customer", "wire_money"]}))
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert "mcp/kyc does not offer wire_money (it offers: delete_everything, " \
        "freeze_account, lookup_customer)" in (node.error or "")
    assert model.requests == []  # the model was never asked
    assert_no_server_left(kyc)


def test_a_tool_whose_schema_changed_since_the_session_started_is_not_called(
        embedded: EmbeddedDispatcher, kyc: Kyc) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")],
                      mode="rugpull")
    detail, node, trail = finished(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]})
    assert detail.state is RunState.SUCCEEDED, node.error
    assert "changed the description, input schema or hints of lookup_customer since the " \
        "session started; not called" in told(model)[0]
    assert trail.steps[1].error is not None
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


@pytest.mark.parametrize("mode, options, said", [
    ("huge", {"max_output_bytes": 65_536, "env": {"KYC_RESULT_BYTES": "200000"}},
     "wrote more than 65536 bytes on stdout"),
    ("huge", {"env": {"KYC_RESULT_BYTES": "30000"}}, "(cut: "),
    ("garbage", {}, "wrote something that is not JSON-RPC on stdout"),
    ("hang", {"timeout": 6}, "did not answer within 6s"),
])
def test_a_hostile_server_is_bounded_and_the_model_told(
        embedded: EmbeddedDispatcher, kyc: Kyc, mode: str, options: dict[str, Any],
        said: str) -> None:
    model = kyc.start([tool_calls(("lookup_customer", {"customer": "c-17"})), final("ok")],
                      mode=mode, **options)
    detail, node, trail = finished(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]})
    assert detail.state is RunState.SUCCEEDED, node.error
    [result] = told(model)
    assert said in result and len(result) < 8300
    assert TOKEN not in result  # the garbage line echoed it: masked
    grandchild = kyc.state / "child"  # absent if the server was too slow to get there
    child = [int(grandchild.read_text())] if grandchild.exists() else []
    assert_no_server_left(kyc, *child)  # the grandchild `sleep` went with its group
    _token_nowhere()
    assert_trail_complete(detail.id, kinds=["model", "tool", "model"])


def test_a_changing_call_a_dead_worker_may_have_made_is_not_made_again(kyc: Kyc) -> None:
    from interlock_agent import tools
    from interlock_agent.params import McpTarget, Tool

    kyc.start([])
    freeze = Tool(name="freeze_account", mcp=McpTarget(server="mcp/kyc", tool="freeze_account",
                                                       schema_sha256="0" * 64))
    progress = tools.advance(freeze, {"account": "A1"}, key="r.score.1.s2",
                             ref=tools.MCP_CALLING, host=None,  # type: ignore[arg-type]
                             run_id="r", node_id="score", attempt=1, traceparent="")
    assert progress.done and "result is unknown" in (progress.error or "")
    assert kyc.pids() == [] and not kyc.ran("frozen-A1")


def test_a_flow_cannot_write_an_expanded_mcp_tool_itself(embedded: EmbeddedDispatcher,
                                                          kyc: Kyc) -> None:
    """`mcp:` on a tool is what the session start writes; from a flow it would carry its
    own `approval: none` past the rules above."""
    model = kyc.start([tool_calls(("freeze_account", {"account": "A1"})), final("ok")])
    forged = {"name": "freeze_account", "approval": "none",
              "mcp": {"server": "mcp/kyc", "tool": "freeze_account", "schema_sha256": "0" * 64}}
    text = agent_flow({"tools": ["lookup_customer"]}).replace(
        '"tools": [{"mcp"', f'"tools": [{json.dumps(forged)}, {{"mcp"', 1)
    flow, _ = ops.register(text)
    detail = wait_run(ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                                    inputs={"c": "c-17"}, dispatcher=embedded))
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert "MCP tools are declared as `- mcp:" in (node.error or "")
    assert model.requests == [] and not kyc.ran("frozen-A1")


@pytest.mark.parametrize("mcp, said", [
    ({"command": ["kyc"], "env": {"KYC_API_TOKEN": "literal"}}, "carries a credential"),
    ({"command": []}, "at least 1 item"),
    (None, "has `mcp: {command: [...]}`"),
])
def test_an_mcp_system_is_checked_when_the_systems_file_is_read(
        mcp: dict[str, Any] | None, said: str) -> None:
    body = {"mcp": mcp} if mcp is not None else {}
    with pytest.raises(SpecError) as raised:
        parse_systems(json.dumps({"systems": {"mcp/kyc": body}}), "systems.yaml")
    assert said in str(raised.value)


def test_a_secret_the_model_repeats_is_masked_in_the_trail_the_api_and_the_audit(
        embedded: EmbeddedDispatcher, kyc: Kyc) -> None:
    """`capture: true` keeps the content, masked with every secret the node resolved: here
    the MCP server's token (its `env`), which the model says back in its answer and in a
    tool call's arguments (as a prompt-injected model would)."""
    from fastapi.testclient import TestClient

    from interlock.api.main import create_app
    from tests.helpers import bearer

    model = kyc.start([tool_calls(("lookup_customer", {"customer": f"c-17 {TOKEN}"})),
                       final(f"risk low; the registry token is {TOKEN}")], mode="echo")
    run_id = start(embedded, {"tools": BOTH, "read_only": ["lookup_customer"]}, capture=True)
    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.SUCCEEDED, node.error
    assert node.outputs["answer"] == "risk low; the registry token is ***"
    assert "debug token=***" in told(model)[0]  # the server's echo, masked before the model
    api = TestClient(create_app(embedded))
    body = api.get(f"/api/v1/runs/{run_id}/nodes/score/agent", headers=bearer()).text
    run = api.get(f"/api/v1/runs/{run_id}", headers=bearer()).text
    assert TOKEN not in body and TOKEN not in run
    steps = json.loads(body)["steps"]
    assert steps[0]["content"]["reply"]["tool_calls"][0]["function"]["arguments"] == \
        json.dumps({"customer": "c-17 ***"})
    assert steps[2]["content"]["reply"]["content"] == "risk low; the registry token is ***"
    assert_trail_complete(run_id, kinds=["model", "tool", "model"], client=api)
    _token_nowhere("node_runs")


def _token_nowhere(*more: str) -> None:
    from sqlalchemy import text
    with session_scope() as session:
        for table in ("agent_sessions", "agent_steps", "audit_log", "attempts", "runs", *more):
            rows = session.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608
            assert TOKEN not in repr(rows), table
