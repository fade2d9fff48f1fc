"""`uses: agent` against a real model: SmolLM2-135M under llama.cpp on loopback
(`tests/llm_harness.py`, fixture `llm_server`). It cannot call tools; it answers the
schema (the server constrains its output to it) and counts its own tokens."""

from __future__ import annotations

import json
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
from tests.helpers import wait_run

SCHEMA = {"type": "object", "required": ["risk"], "additionalProperties": False,
          "properties": {"risk": {"type": "string", "enum": ["low", "high"]}}}


@pytest.fixture
def dispatcher(sqlite_store: str, llm_server: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(json.dumps({"systems": {"llm/smol": {
        "url": llm_server.base_url, "timeout": 120, "llm": {"models": [llm_server.model]}}}}))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    settings.cache_clear()
    embedded = EmbeddedDispatcher(jobs=periodic_jobs())
    yield embedded
    embedded.close()


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
