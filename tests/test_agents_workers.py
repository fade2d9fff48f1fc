"""Integration: an agent's approval pause on real Celery workers (real Redis, SQLite and
PostgreSQL). The one worker that ran the loop is SIGKILLed (by pid) while the tool call
waits for people; two approvers approve through the API with no worker alive; a second
worker resumes the agent; the flow tool runs exactly once and the final answer is
validated. And a budget spent by the approved call ends the node at the model's next
call, after the same kill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from interlock.api.main import create_app
from interlock.dispatch.celery_app import CeleryDispatcher, make_app
from interlock.operations import agents as agent_ops
from interlock.states import RunState
from interlock.store.db import session_scope
from interlock.store.tables import AgentSession
from tests.agent_trail import assert_trail_complete
from tests.helpers import wait_run
from tests.scripted_llm import final, tool_calls
from tests.test_agents import SCHEMA, agent_flow, llm  # noqa: F401  (the fixture)
from tests.test_agents_approval import (
    approver,
    children,
    gated_tools,
    pending_request,
    start,
    vote,
)
from tests.workers import WorkerPool, worker_pool

pytestmark = pytest.mark.integration


@pytest.fixture
def one_worker(store_url: str, tmp_path: Path) -> Iterator[Any]:
    """Starts one worker (after the model server is registered: the worker inherits the
    systems file), so the worker that runs the loop is known."""
    pools: list[Any] = []

    def begin() -> WorkerPool:
        pools.append(worker_pool(store_url, tmp_path, count=1))
        return pools[-1].__enter__()

    yield begin
    for ctx in pools:
        ctx.__exit__(None, None, None)


def kill_during_the_pause(pool: WorkerPool, run_id: str) -> float:
    """SIGKILL the only worker once the call is parked (no poll holds the session), then
    return when that was; the pause goes on with no worker alive."""
    [worker] = pool.alive()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with session_scope() as session:
            s = session.scalar(select(AgentSession).where(AgentSession.run_id == run_id))
            if s is not None and s.owner is None:
                break
        time.sleep(0.02)
    worker.kill()  # by its pid's process group, never by name
    assert pool.alive() == []
    return time.monotonic()


def test_a_worker_killed_during_the_pause_another_resumes_and_the_tool_runs_once(
        one_worker: Any, llm: Any) -> None:  # noqa: F811
    model = llm([tool_calls(("freeze_account", {"account": "ACC-9"})),
                 final({"score": 0.95})])
    pool = one_worker()
    dispatcher = CeleryDispatcher(make_app(pool.env["INTERLOCK_BROKER_URL"]))
    run_id = start(dispatcher, agent_flow(tools=gated_tools()))
    row = pending_request(run_id, timeout=60)
    kill_during_the_pause(pool, run_id)
    with TestClient(create_app(dispatcher)) as client:
        assert vote(client, row.id, approver("alice")).status_code == 200
        assert vote(client, row.id, approver("bob")).status_code == 200
    assert children() == []  # approved, but no worker is alive to run it
    resumed = time.monotonic()
    pool.start().wait_ready()
    detail = wait_run(run_id, timeout=120)
    took = time.monotonic() - resumed
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.SUCCEEDED, node.error
    assert node.outputs["answer"] == {"score": 0.95}  # validated against SCHEMA
    assert SCHEMA["required"] == ["score"]
    assert len(children()) == 1  # exactly once
    assert len(model.requests) == 2
    trail = agent_ops.agent_trail(run_id, "score")
    assert [(s.kind, s.state) for s in trail.steps] == \
        [("model", "done"), ("tool", "done"), ("model", "done")]
    assert trail.steps[1].approval_id == row.id
    assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                          decided={row.id: "approved"})
    print(f"\nresumed on a new worker and finished {took:.1f}s after it was started")


def test_a_budget_spent_by_the_approved_call_ends_the_node_after_the_kill(
        one_worker: Any, llm: Any) -> None:  # noqa: F811
    llm([tool_calls(("freeze_account", {"account": "A"})),
         tool_calls(("kyc_lookup", {"customer": "c-17"}))])
    pool = one_worker()
    dispatcher = CeleryDispatcher(make_app(pool.env["INTERLOCK_BROKER_URL"]))
    run_id = start(dispatcher, agent_flow(tools=gated_tools(), budget={"tool_calls": 1}))
    row = pending_request(run_id, timeout=60)
    kill_during_the_pause(pool, run_id)
    with TestClient(create_app(dispatcher)) as client:
        for name in ("carol", "dan"):
            assert vote(client, row.id, approver(name)).status_code == 200
    pool.start().wait_ready()
    detail = wait_run(run_id, timeout=120)
    node = {n.id: n for n in detail.nodes}["score"]
    assert detail.state is RunState.FAILED
    assert node.error == "budget tool_calls exhausted: 1 used of 1"
    assert len(children()) == 1 and children("kyc-lookup") == []
    assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                          decided={row.id: "approved"})
