"""`uses: agent` against a real model: SmolLM2-135M under llama.cpp on loopback
(`tests/llm_harness.py`, fixtures `llm_server` and `llm_server_private`). It cannot call
tools; it answers the schema (the server constrains its output to it) and counts its own
tokens; cut short it answers garbage, which the schema refuses; a long answer runs into
the wall-time budget; and the server killed in the middle of a request fails the node
with the reason instead of hanging it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import agents as agent_ops
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.states import RunState
from tests.agent_trail import assert_trail_complete
from tests.helpers import wait_run

SCHEMA = {"type": "object", "required": ["risk"], "additionalProperties": False,
          "properties": {"risk": {"type": "string", "enum": ["low", "high"]}}}


def _dispatcher(server: Any, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(json.dumps({"systems": {"llm/smol": {
        "url": server.base_url, "timeout": 120, "llm": {"models": [server.model]}}}}))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    settings.cache_clear()
    embedded = EmbeddedDispatcher(jobs=periodic_jobs())
    yield embedded
    embedded.close()


@pytest.fixture
def dispatcher(sqlite_store: str, llm_server: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    yield from _dispatcher(llm_server, tmp_path, monkeypatch)


def _run(dispatcher: EmbeddedDispatcher, flow_id: str, with_: dict[str, Any]) -> str:
    flow = {"id": flow_id, "namespace": "tests.agents",
            "nodes": {"score": {"uses": "agent", "with": {"system": "llm/smol", **with_}}}}
    registered, _ = ops.register(json.dumps(flow))
    return ops.start_run(namespace=registered.namespace, flow_id=registered.id, inputs={},
                         dispatcher=dispatcher)


def test_a_real_model_answers_the_schema_and_its_tokens_are_counted(
        dispatcher: EmbeddedDispatcher, llm_server: Any) -> None:
    flow = {"id": "real-agent", "namespace": "tests.agents",
            "nodes": {"score": {"uses": "agent", "with": {
                "system": "llm/smol", "model": llm_server.model,
                "instructions": "Answer only with JSON.",
                "prompt": "A customer has 3 sanctions hits. Is the risk low or high?",
                "output_schema": SCHEMA,
                "budget": {"output_tokens": 64, "model_requests": 1, "wall_time": "2m"}}}}}
    registered, _ = ops.register(json.dumps(flow))
    run_id = ops.start_run(namespace=registered.namespace, flow_id=registered.id, inputs={},
                           dispatcher=dispatcher)
    detail = wait_run(run_id, timeout=180)
    node = detail.nodes[0]
    assert detail.state is RunState.SUCCEEDED, node.error
    assert node.outputs["answer"]["risk"] in ("low", "high")
    [step] = agent_ops.agent_trail(run_id, "score").steps
    assert step.input_tokens > 10 and 0 < step.output_tokens <= 64  # the server's own counts
    assert node.outputs["usage"]["output_tokens"] == step.output_tokens
    assert_trail_complete(run_id, kinds=["model"])


def test_an_answer_cut_short_is_garbage_the_schema_refuses(
        dispatcher: EmbeddedDispatcher, llm_server: Any) -> None:
    """Three tokens of JSON (the output budget is sent as `max_tokens`): what a real model
    says when it is stopped mid-answer. The node fails with the reason, not a crash."""
    run_id = _run(dispatcher, "real-garbage", {
        "model": llm_server.model, "instructions": "Answer only with JSON.",
        "prompt": "A customer has 3 sanctions hits. Is the risk low or high?",
        "output_schema": SCHEMA,
        "budget": {"output_tokens": 3, "model_requests": 1, "wall_time": "2m"}})
    detail = wait_run(run_id, timeout=180)
    node = detail.nodes[0]
    assert detail.state is RunState.FAILED
    assert node.error and ("JSON" in node.error or "schema" in node.error), node.error
    [step] = agent_ops.agent_trail(run_id, "score").steps
    assert step.output_tokens <= 3 and step.finish_reason == "length"
    assert_trail_complete(run_id, kinds=["model"])


def test_a_long_answer_runs_into_the_wall_time_budget(
        dispatcher: EmbeddedDispatcher, llm_server: Any) -> None:
    started = time.monotonic()
    run_id = _run(dispatcher, "real-slow", {
        "model": llm_server.model,
        "prompt": "Write a very long story about a bank, at least two thousand words.",
        "budget": {"output_tokens": 4000, "model_requests": 3, "wall_time": "3s"}})
    detail = wait_run(run_id, timeout=120)
    assert detail.state is RunState.FAILED
    assert "wall_time" in (detail.nodes[0].error or ""), detail.nodes[0].error
    assert time.monotonic() - started < 60  # stopped near its budget, not at the answer's end
    assert_trail_complete(run_id)


def test_the_server_killed_mid_request_fails_the_node_with_the_reason(
        sqlite_store: str, llm_server_private: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = llm_server_private
    for dispatcher in _dispatcher(server, tmp_path, monkeypatch):
        run_id = _run(dispatcher, "real-killed", {
            "model": server.model,
            "prompt": "Write a very long story about a bank, at least two thousand words.",
            "budget": {"output_tokens": 4000, "model_requests": 5, "wall_time": "20s"}})
        deadline = time.monotonic() + 60
        while not server.is_processing():  # the agent's request is being answered
            assert time.monotonic() < deadline, "the model never started answering"
            time.sleep(0.05)
        server.kill()
        detail = wait_run(run_id, timeout=120)
    node = detail.nodes[0]
    assert detail.state is RunState.FAILED and "wall_time" in (node.error or ""), node.error
    steps = agent_ops.agent_trail(run_id, "score").steps
    # The request the kill cut, and the retries that found no server, are recorded as
    # abandoned with their reason; none counts as an answer.
    assert steps and all(s.state == "abandoned" for s in steps), [s.state for s in steps]
    assert any("Error" in str(s.error) or "unreachable" in str(s.error)
               or "no answer" in str(s.error) for s in steps), [s.error for s in steps]
    assert_trail_complete(run_id)
