"""Tool calls behind people's approval (`docs/agents.md`), on the embedded dispatcher, SQLite
and PostgreSQL, against the scripted model server: the call parks the session as a request
of the approvals machinery (payload = the tool and its exact arguments), two approvers
release it (the starter, the author and the agent may not), it runs once; a rejection and a
timeout are told to the model, which goes on; budgets count across the pause; and the
trail is complete in the API, the trace and the audit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.cli.main import app
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.engine.payload import payload_hash
from interlock.operations import agents as agent_ops
from interlock.operations import runs as ops
from interlock.states import RunState
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.tables import ApprovalRequest, Attempt, NodeRun, Run
from interlock.trace.build import trace_run
from tests.agent_trail import assert_trail_complete
from tests.helpers import bearer, wait_run
from tests.scripted_llm import final, tool_calls
from tests.test_agents import CHILD, TOOLS, agent_flow, llm  # noqa: F401  (the fixture)

STARTER = "user:starter"
FREEZE = """
id: freeze-account
namespace: tests.agents
inputs: {account: {type: string, required: true}}
nodes:
  freeze: {uses: noop, with: {account: "{{ inputs.account }}", frozen: true}}
"""
TWO_PERSON = {"rules": [{"name": "two approvers", "role": "approver", "count": 2}]}


@pytest.fixture
def client(embedded: EmbeddedDispatcher) -> Iterator[TestClient]:
    with TestClient(create_app(embedded)) as api:
        yield api


def gated_tools(approval: Any = None) -> list[dict[str, Any]]:
    freeze = {"name": "freeze_account", "description": "Freeze an account",
              "parameters": {"type": "object", "required": ["account"],
                             "properties": {"account": {"type": "string", "maxLength": 20}}},
              "flow": {"namespace": "tests.agents", "id": "freeze-account"},
              "approval": approval or TWO_PERSON}
    return [TOOLS[0], freeze]


def start(embedded: Any, flow_text: str) -> str:
    ops.register(CHILD)
    ops.register(FREEZE)
    flow, _ = ops.register(flow_text)
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                         inputs={"customer": "c-17"}, dispatcher=embedded,
                         trigger={"type": "manual", "by": STARTER})


def pending_request(run_id: str, timeout: float = 30.0) -> ApprovalRequest:
    """The run's agent tool request, once it is open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope() as session:
            row = session.scalars(select(ApprovalRequest).where(
                ApprovalRequest.run_id == run_id)).first()
            if row is not None:
                session.expunge(row)
                return row
        time.sleep(0.05)
    raise AssertionError(f"no approval request for run {run_id} after {timeout}s")


def vote(client: TestClient, request_id: str, headers: dict[str, str], option: str = "approve",
         comment: str = "") -> Any:
    return client.post(f"/api/v1/approvals/{request_id}/votes", headers=headers,
                       json={"option": option, "inputs": {}, "comment": comment})


def approver(name: str) -> dict[str, str]:
    return bearer(Role.APPROVER, "tests.*", name=name)


def children(flow_id: str = "freeze-account") -> list[Run]:
    with session_scope() as session:
        return list(session.scalars(select(Run).where(Run.flow_id == flow_id)))


def test_an_approved_call_runs_once_after_two_people_and_the_trail_is_complete(
        embedded: EmbeddedDispatcher, llm: Any,  # noqa: F811
        client: TestClient) -> None:
    model = llm([tool_calls(("freeze_account", {"account": "ACC-9"})), final({"score": 0.9})])
    run_id = start(embedded, agent_flow(tools=gated_tools()))
    row = pending_request(run_id)
    # Parked: no model request, no child run, the node says what it waits for.
    time.sleep(0.5)
    assert len(model.requests) == 1 and children() == []
    with session_scope() as session:
        node = session.scalar(select(NodeRun).where(NodeRun.run_id == run_id))
        attempt = session.scalar(select(Attempt).where(Attempt.run_id == run_id))
        assert (node.state, node.waiting_for) == ("running", f"approval:{row.id}")
        assert attempt.remote_status == "approval_wait"
        flow = flow_of_run(session, session.get(Run, run_id))
        # The hash binds the exact arguments (engine.payload over the node and the payload).
        assert row.payload_hash == payload_hash("score", flow.nodes["score"], row.payload,
                                                row.subject, row.body)
    assert (row.origin, row.node_id, row.state) == ("interlock", "score", "pending")
    assert row.payload["tool"] == "freeze_account"
    assert row.payload["arguments"] == {"account": "ACC-9"}
    assert "ACC-9" in row.body and "freeze_account" in row.subject
    assert row.excluded[STARTER] == "started the run"
    assert row.excluded[f"agent:{run_id}/score"] == "the agent that asked"
    assert vote(client, row.id, approver("starter")).status_code == 403  # separation
    got = client.get(f"/api/v1/approvals/{row.id}", headers=bearer())
    assert got.status_code == 200 and got.json()["payload"]["arguments"] == {"account": "ACC-9"}
    assert vote(client, row.id, approver("alice"), comment="checked").status_code == 200
    time.sleep(0.3)
    assert children() == []  # one approver of two: still parked
    assert vote(client, row.id, approver("bob")).status_code == 200

    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.SUCCEEDED, node.error
    assert len(children()) == 1  # exactly once
    told = json.loads(model.requests[1]["messages"][-1]["content"])
    assert told["run_id"] == children()[0].id and told["state"] == "succeeded"
    trail = agent_ops.agent_trail(run_id, "score")
    tool = trail.steps[1]
    assert (tool.kind, tool.state, tool.approval_id, tool.ref) == \
        ("tool", "done", row.id, children()[0].id)
    assert trail.usage["tool_calls"] == 1
    assert_approval_trail(client, run_id, row.id, decided="approved")
    with session_scope() as session:
        node = session.scalar(select(NodeRun).where(NodeRun.run_id == run_id))
        assert node.waiting_for is None


def test_a_rejected_call_is_told_to_the_model_which_answers_anyway(
        embedded: EmbeddedDispatcher, llm: Any,  # noqa: F811
        client: TestClient) -> None:
    model = llm([tool_calls(("freeze_account", {"account": "ACC-9"})), final({"score": 0.4})])
    run_id = start(embedded, agent_flow(tools=gated_tools()))
    row = pending_request(run_id)
    assert vote(client, row.id, approver("carol"), option="reject",
                comment="no evidence of fraud").status_code == 200
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    assert model.requests[1]["messages"][-1]["content"] == \
        "rejected by user:carol: no evidence of fraud"
    assert children() == []
    trail = agent_ops.agent_trail(run_id, "score")
    assert (trail.steps[1].state, trail.steps[1].approval_id) == ("refused", row.id)
    assert trail.usage["tool_calls"] == 0
    assert_approval_trail(client, run_id, row.id, decided="rejected")


def test_a_call_nobody_decides_times_out_and_the_model_is_told(
        embedded: EmbeddedDispatcher, llm: Any,  # noqa: F811
        client: TestClient) -> None:
    model = llm([tool_calls(("freeze_account", {"account": "A"})), final({"score": 0.5})])
    run_id = start(embedded, agent_flow(tools=gated_tools({**TWO_PERSON, "timeout": "1s"})))
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    assert model.requests[1]["messages"][-1]["content"].startswith("timed out")
    with session_scope() as session:
        [request_id] = session.scalars(select(ApprovalRequest.id)).all()
    assert children() == []
    assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                          decided={request_id: "timed_out"}, client=client)


def test_the_budget_counts_across_the_pause(embedded: EmbeddedDispatcher, llm: Any,  # noqa: F811
                                            client: TestClient) -> None:
    llm([tool_calls(("freeze_account", {"account": "A"})),
         tool_calls(("kyc_lookup", {"customer": "c-17"}))])
    run_id = start(embedded, agent_flow(tools=gated_tools(), budget={"tool_calls": 1}))
    row = pending_request(run_id)
    for name in ("dan", "erin"):
        assert vote(client, row.id, approver(name)).status_code == 200
    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert node.error == "budget tool_calls exhausted: 1 used of 1"
    assert len(children()) == 1  # the approved call used the budget
    assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                          decided={row.id: "approved"}, client=client)


def test_wall_time_runs_during_the_pause_and_the_request_is_cancelled(
        embedded: EmbeddedDispatcher, llm: Any,  # noqa: F811
        client: TestClient) -> None:
    llm([tool_calls(("freeze_account", {"account": "A"}))])
    run_id = start(embedded, agent_flow(tools=gated_tools(), budget={"wall_time": "2s"}))
    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert "budget wall_time exhausted" in (node.error or "")
    with session_scope() as session:
        [row] = session.scalars(select(ApprovalRequest)).all()
        assert row.state == "cancelled" and "ended failed" in (row.reason or "")
    assert children() == []
    steps = assert_trail_complete(run_id, kinds=["model", "tool"],
                                  decided={row.id: "cancelled"}, client=client)
    assert steps[1]["state"] == "waiting"  # never run: the node ended around it


def test_invalid_approval_rules_fail_the_node_at_submit(
        embedded: EmbeddedDispatcher, llm: Any) -> None:  # noqa: F811
    llm([])
    run_id = start(embedded, agent_flow(tools=gated_tools({"rules": [{"role": "wizard"}]})))
    detail = wait_run(run_id)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert "tool `freeze_account`: approval rule 1: role `wizard` is not a role" in node.error


def assert_approval_trail(client: TestClient, run_id: str, request_id: str, *,
                          decided: str) -> None:
    """The shared check (`tests/agent_trail.py`), then what a gated call adds: the tool span
    named, the approval under it, and both in `interlock trace`."""
    steps = assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                                  decided={request_id: decided}, client=client)
    assert steps[1]["approval_id"] == request_id
    spans = {s["id"]: s for s in client.get(f"/api/v1/runs/{run_id}/trace",
                                            headers=bearer()).json()["spans"]}
    tool = spans[f"step:{run_id}/score/1/0002"]
    assert tool["label"] == "tool freeze_account"
    # The span runs from the ask to the end, holding the wait; the step's duration is the
    # tool's own, from the decision.
    assert steps[1]["duration_ms"] / 1000 <= tool["duration_s"]
    assert spans[f"approval:{request_id}"]["state"] == decided
    assert trace_run(run_id).spans  # the same through the library
    tree = CliRunner().invoke(app, ["trace", run_id])
    assert tree.exit_code == 0, tree.output
    assert "tool freeze_account" in tree.output and "approval" in tree.output
