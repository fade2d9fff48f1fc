"""An agent's action tool against the real Dagster 1.13 of the test harness: the scripted
model asks to re-score with a row count; Interlock launches the flow's fixed job through the
Dagster adapter with the model's arguments as the run's `run_config` (the flow fixed the
system and the job; the model fills only the config, checked against the tool's schema),
waits for it across polls, and hands the run's outputs back to the model, which answers.
The Dagster run carries the run's trace id in its tags; the tool call is one Dagster run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from dagster_harness import DagsterServer

from interlock.config.env import settings
from interlock.operations import agents as agent_ops
from interlock.states import RunState
from tests.agent_trail import assert_trail_complete
from tests.helpers import run_polled
from tests.scripted_llm import MODEL, final, serve, tool_calls

pytestmark = pytest.mark.timeout(600)
SECRET_ENV = "DAGSTER_AGENT_EVENTS_SECRET"
ANSWER = {"type": "object", "required": ["risk"],
          "properties": {"risk": {"type": "string", "enum": ["low", "high"]}}}
# What the model may put in the run's config: the row count of the job's `extract` op, only.
RUN_CONFIG = {"type": "object", "additionalProperties": False, "required": ["ops"],
              "properties": {"ops": {
                  "type": "object", "additionalProperties": False, "required": ["extract"],
                  "properties": {"extract": {
                      "type": "object", "additionalProperties": False, "required": ["config"],
                      "properties": {"config": {
                          "type": "object", "additionalProperties": False,
                          "required": ["rows"],
                          "properties": {"rows": {"type": "integer", "minimum": 1,
                                                  "maximum": 100}}}}}}}}}


def test_an_action_tool_launches_a_real_dagster_job_once_and_its_outputs_reach_the_model(
        dagster_server: DagsterServer, sqlite_store: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked = {"ops": {"extract": {"config": {"rows": 5}}}}
    script = [tool_calls(("rescore", asked)), final({"risk": "low"})]
    with serve(script) as model:
        systems = tmp_path / "systems.yaml"
        systems.write_text(json.dumps({"systems": {
            "llm/scripted": {"url": model.base_url, "timeout": 10, "llm": {"models": [MODEL]}},
            dagster_server.system: {"url": dagster_server.url, "timeout": 10,
                                    "events_secret": {"env": SECRET_ENV}}}}))
        monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
        monkeypatch.setenv(SECRET_ENV, dagster_server.events_secret)
        settings.cache_clear()
        flow = {"id": "rescoring", "namespace": "tests.agents", "nodes": {"assess": {
            "uses": "agent", "with": {
                "system": "llm/scripted", "model": MODEL, "prompt": "Assess customer c-42",
                "output_schema": ANSWER,
                "budget": {"tool_calls": 1, "model_requests": 3, "wall_time": "5m"},
                "tools": [{
                    "name": "rescore", "description": "Score the customers again",
                    "parameters": RUN_CONFIG,
                    "action": {"uses": "dagster", "arguments_to": "run_config", "with": {
                        "system": dagster_server.system, "job": "interlock_ok_job"}}}]}}}}
        detail = run_polled(json.dumps(flow))
        run_id = detail.id
        node = detail.nodes[0]
        assert detail.state is RunState.SUCCEEDED, node.error
        assert node.outputs["answer"] == {"risk": "low"}
        # What the model read back: the Dagster run's end and its `score` op's output.
        told = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
        assert len(told) == 1 and '"state": "succeeded"' in told[0]["content"], told
        assert '"rows": 5' in told[0]["content"], told[0]["content"]
    tool = next(s for s in agent_ops.agent_trail(run_id, "assess").steps if s.kind == "tool")
    assert (tool.tool, tool.state) == ("rescore", "done")
    assert_trail_complete(run_id, node="assess", kinds=["model", "tool", "model"])
    mine = dagster_server.runs(job_name="interlock_ok_job", tags={"interlock/run_id": run_id})
    assert len(mine) == 1  # one tool call, one Dagster run, however many polls it took
    launched = dagster_server.run(mine[0]["runId"])
    tags = {t["key"]: t["value"] for t in launched["tags"]}
    assert tags["interlock/traceparent"].split("-")[1] == detail.trace_id
    assert yaml.safe_load(launched["runConfigYaml"]) == asked  # the model's, as checked
