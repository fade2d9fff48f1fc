"""An agent's action tool against the real Airflow 3.3 of the test harness: the scripted
model asks to re-run a screening DAG with its arguments as the DAG run's `conf`; Interlock
triggers it through the Airflow adapter (the flow fixed the DAG and the system; the model
fills only `conf`), waits for it across polls, and hands the DAG's outputs back to the model,
which answers. The DAG run carries the run's trace id; the tool call is one DAG run, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow_flows import SECRET_ENV
from airflow_harness import AirflowServer

from interlock.config.env import settings
from interlock.operations import agents as agent_ops
from interlock.states import RunState
from tests.agent_trail import assert_trail_complete
from tests.helpers import run_polled
from tests.scripted_llm import MODEL, final, serve, tool_calls

pytestmark = pytest.mark.timeout(600)
SCHEMA = {"type": "object", "required": ["risk"],
          "properties": {"risk": {"type": "string", "enum": ["low", "high"]}}}


def test_an_action_tool_triggers_a_real_airflow_dag_once_and_its_outputs_reach_the_model(
        airflow_server: AirflowServer, sqlite_store: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    script = [tool_calls(("rescreen", {"customer": "c-42", "reason": "new address"})),
              final({"risk": "high"})]
    with serve(script) as model:
        systems = tmp_path / "systems.yaml"
        systems.write_text(json.dumps({"systems": {
            "llm/scripted": {"url": model.base_url, "timeout": 10, "llm": {"models": [MODEL]}},
            airflow_server.system: {"url": airflow_server.url,
                                    "events_secret": {"env": SECRET_ENV}, "timeout": 10}}}))
        monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
        monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
        settings.cache_clear()
        flow = {"id": "rescreening", "namespace": "tests.agents", "nodes": {"score": {
            "uses": "agent", "with": {
                "system": "llm/scripted", "model": MODEL, "prompt": "Score customer c-42",
                "output_schema": SCHEMA,
                "budget": {"tool_calls": 1, "model_requests": 3, "wall_time": "5m"},
                "tools": [{
                    "name": "rescreen", "description": "Re-run the sanctions screening",
                    "parameters": {"type": "object", "additionalProperties": False,
                                   "required": ["customer"],
                                   "properties": {"customer": {"type": "string"},
                                                  "reason": {"type": "string"}}},
                    "action": {"uses": "airflow", "arguments_to": "conf", "with": {
                        "system": airflow_server.system, "dag_id": "interlock_ok",
                        "outputs_from": ["screen"]}}}]}}}}
        detail = run_polled(json.dumps(flow))
        run_id = detail.id
        node = detail.nodes[0]
        assert detail.state is RunState.SUCCEEDED, node.error
        assert node.outputs["answer"] == {"risk": "high"}
        # What the model read back: the DAG run's end and the outputs of its `screen` task.
        told = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
        assert len(told) == 1 and '"state": "succeeded"' in told[0]["content"]
        assert '"hits": 2' in told[0]["content"]
    tool = next(s for s in agent_ops.agent_trail(run_id, "score").steps if s.kind == "tool")
    assert (tool.tool, tool.state) == ("rescreen", "done")
    assert_trail_complete(run_id, kinds=["model", "tool", "model"])
    handle = json.loads(tool.ref or "{}")
    dag_run = airflow_server.dag_run("interlock_ok", handle["external_id"])
    assert dag_run["conf"]["customer"] == "c-42" and dag_run["conf"]["reason"] == "new address"
    assert dag_run["conf"]["interlock"]["traceparent"].split("-")[1] == detail.trace_id
    runs = airflow_server.get_json("/api/v2/dags/interlock_ok/dagRuns?limit=100")["dag_runs"]
    mine = [r for r in runs if (r.get("conf") or {}).get("interlock", {}).get("run_id") == run_id]
    assert len(mine) == 1  # one tool call, one DAG run, however many polls it took


def test_an_action_whose_system_does_not_answer_is_looked_at_again_not_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Polling skips a system that is down (the batch's other systems are still observed):
    the tool call waits for the next poll instead of failing on an empty answer (found by
    the test above when the harness's Airflow was slow: `IndexError`)."""
    from interlock_agent.params import Tool
    from interlock_agent.tools import advance

    from interlock.adapters.contract import Handle

    systems = tmp_path / "systems.yaml"
    systems.write_text(json.dumps({"systems": {"airflow/down": {
        "url": "http://127.0.0.1:9", "timeout": 2}}}))  # nothing listens on port 9
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    settings.cache_clear()
    tool = Tool.model_validate({"name": "rescreen", "action": {"uses": "airflow", "with": {
        "system": "airflow/down", "dag_id": "interlock_ok"}}})
    ref = json.dumps({"kind": "airflow", "external_id": "manual__1", "system": "airflow/down",
                      "url": None, "data": {"dag_id": "interlock_ok", "outputs_from": [],
                                            "run_after": "2026-12-01T05:00:00+00:00",
                                            "logs": "failed"}})
    Handle(**json.loads(ref))  # the shape a submitted action's step keeps
    progress = advance(tool, {}, key="k-1", ref=ref, host=None,  # type: ignore[arg-type]
                       run_id="r-1", node_id="score", attempt=1, traceparent="00-" + "0" * 55)
    assert (progress.done, progress.ref, progress.error) == (False, ref, None)
