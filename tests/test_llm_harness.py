"""The real-model harness end to end, through plain httpx (no mocks, no OpenAI client).

Answers are greedy (``temperature: 0``) on one slot, so they are the same on every run with
the pinned wheels; the assertions still check shapes and schemas rather than exact words.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from harness_process import live_pids, session_pids
from llm_harness import CONTEXT, MODEL_ID, LlmHarnessError, LlmServer

# The first test to use llm_server also pays for its start (and, once, the install).
pytestmark = pytest.mark.timeout(600)

ASK = [{"role": "user", "content": "Say hello in one short sentence."}]
TRIAGE = [
    {"role": "system", "content": "You triage failed pipeline runs. Answer in JSON."},
    {"role": "user", "content": "The nightly job failed with a timeout talking to the "
                                "database. What should we do?"},
]
TRIAGE_SCHEMA = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["retry", "skip", "escalate"]},
        "reason": {"type": "string", "maxLength": 80},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["action", "reason", "confidence"],
    "additionalProperties": False,
}
# The three ways this server takes a schema; each constrains sampling to it.
SCHEMA_FORMS = {
    "openai-json-schema": {"response_format": {
        "type": "json_schema",
        "json_schema": {"name": "triage", "strict": True, "schema": TRIAGE_SCHEMA}}},
    "json-object-with-schema": {"response_format": {"type": "json_object",
                                                    "schema": TRIAGE_SCHEMA}},
    "top-level-json-schema": {"json_schema": TRIAGE_SCHEMA},
}
TOOLS = [
    {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {"run_id": {"type": "string"}},
                       "required": ["run_id"]}}}
    for name, description in [("get_run_status", "Return the status of a pipeline run"),
                              ("retry_run", "Retry a failed pipeline run")]
]


def _chat(server: LlmServer, messages: list[dict[str, Any]], *, timeout: float = 120.0,
          **options: Any) -> dict[str, Any]:
    body = {"model": server.model, "messages": messages, "temperature": 0, **options}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=timeout,
                          trust_env=False)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _content(answer: dict[str, Any]) -> str:
    return str(answer["choices"][0]["message"]["content"])


def _tool_call(run_id: int, name: str) -> dict[str, Any]:
    return {"role": "assistant", "content": "", "tool_calls": [{
        "id": f"call_{run_id}", "type": "function",
        "function": {"name": name, "arguments": json.dumps({"run_id": str(run_id)})}}]}


def _few_shot_tool_calls() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You operate pipelines. Answer only with a tool call."},
        {"role": "user", "content": "Status of run 7?"}, _tool_call(7, "get_run_status"),
        {"role": "user", "content": "Retry run 9."}, _tool_call(9, "retry_run"),
        {"role": "user", "content": "Status of run 11?"}, _tool_call(11, "get_run_status"),
        {"role": "user", "content": "Status of run 42?"},
    ]


def _wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)


def test_server_lists_the_model_on_loopback(llm_server: LlmServer) -> None:
    assert llm_server.base_url == f"http://127.0.0.1:{llm_server.port}/v1"
    assert session_pids(llm_server.pid)
    models = httpx.get(f"{llm_server.base_url}/models", trust_env=False).json()
    (model,) = models["data"]
    assert model["id"] == llm_server.model == MODEL_ID
    assert model["meta"]["n_ctx"] == CONTEXT
    assert model["meta"]["n_params"] == 134_515_008
    assert httpx.get(f"{llm_server.url}/health", trust_env=False).json() == {"status": "ok"}


def test_chat_completion_answers_text_and_counts_tokens(llm_server: LlmServer) -> None:
    answer = _chat(llm_server, ASK, max_tokens=24)
    assert answer["model"] == llm_server.model
    assert _content(answer).strip()
    usage = answer["usage"]
    assert usage["prompt_tokens"] == llm_server.prompt_tokens(ASK)
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = _chat(llm_server, ASK, max_tokens=24, model="gpt-4o")  # any name is served
    assert again["model"] == llm_server.model
    assert _content(again) == _content(answer)  # greedy: the same answer


def test_a_prompt_longer_than_the_context_is_refused(llm_server: LlmServer) -> None:
    messages = [{"role": "user", "content": "run " * CONTEXT}]
    response = httpx.post(f"{llm_server.base_url}/chat/completions", trust_env=False,
                          json={"messages": messages, "max_tokens": 1}, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert error["n_prompt_tokens"] > error["n_ctx"] == CONTEXT


@pytest.mark.parametrize("form", SCHEMA_FORMS)
def test_structured_answer_validates_against_the_schema(llm_server: LlmServer,
                                                        form: str) -> None:
    answer = _chat(llm_server, TRIAGE, max_tokens=120, **SCHEMA_FORMS[form])
    assert answer["choices"][0]["finish_reason"] == "stop"
    jsonschema.validate(json.loads(_content(answer)), TRIAGE_SCHEMA)


def test_a_schema_the_server_cannot_compile_is_refused(llm_server: LlmServer) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}
    response = httpx.post(f"{llm_server.base_url}/chat/completions", trust_env=False,
                          json={"messages": TRIAGE, "max_tokens": 8, "json_schema": schema},
                          timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_model_answers_garbage_when_cut_short_or_unconstrained(
        llm_server: LlmServer) -> None:
    """Two real ways to get an answer that is not the schema's: ``max_tokens`` cuts the
    constrained JSON, and without a schema the model writes what it likes."""
    cut = _chat(llm_server, TRIAGE, max_tokens=6, **SCHEMA_FORMS["openai-json-schema"])
    assert cut["choices"][0]["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(_content(cut))

    loose = _content(_chat(llm_server, TRIAGE, max_tokens=60))
    with pytest.raises((json.JSONDecodeError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(loose), TRIAGE_SCHEMA)


def test_wall_time_budget_on_the_server(llm_server: LlmServer) -> None:
    """``t_max_predict_ms`` ends the answer at its first newline after the budget; an answer
    without newlines runs on to ``max_tokens``, the bound that always holds."""
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    started = time.monotonic()
    answer = _chat(llm_server, story, max_tokens=1500, t_max_predict_ms=300)
    elapsed = time.monotonic() - started
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] < 1500  # the budget ended it, at a newline
    print(f"\n300 ms generation budget: {answer['usage']['completion_tokens']} tokens, "
          f"{elapsed:.2f}s wall")

    one_line = _chat(llm_server, story, max_tokens=40, t_max_predict_ms=1,
                     grammar="root ::= [a-z ]+")
    assert one_line["choices"][0]["finish_reason"] == "length"
    assert one_line["usage"]["completion_tokens"] == 40


def test_closing_a_stream_frees_the_slot(llm_server: LlmServer) -> None:
    """A streamed answer stops at the first chunk written to a closed connection."""
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    body = {"messages": story, "max_tokens": 1500, "temperature": 0, "stream": True}
    with httpx.Client(timeout=60, trust_env=False) as client, \
            client.stream("POST", f"{llm_server.base_url}/chat/completions", json=body) as r:
        chunks = [line for line, _ in zip(r.iter_lines(), range(5), strict=False)]
    assert chunks[0].startswith("data: ")
    _wait(lambda: not llm_server.is_processing(), 10, "the slot freed")


def test_a_client_that_gives_up_frees_the_slot(llm_server: LlmServer) -> None:
    """A whole (non-streamed) answer stops when the server, waiting for it, next looks at the
    connection: every second, but only while no other request reaches the server (polling
    ``/slots`` faster than that kept the abandoned answer going)."""
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{llm_server.base_url}/chat/completions", trust_env=False, timeout=0.5,
                   json={"messages": story, "max_tokens": 1500, "temperature": 0})
    time.sleep(2.5)
    (slot,) = httpx.get(f"{llm_server.url}/slots", trust_env=False).json()
    assert not slot["is_processing"]
    assert slot["n_prompt_tokens"] < llm_server.prompt_tokens(story) + 1500  # cut short


def test_tool_calls_after_a_few_examples(llm_server: LlmServer) -> None:
    """With the harness's chat template the server parses the model's ``<tool_call>`` into
    OpenAI ``tool_calls``; SmolLM2-135M writes one when shown a few."""
    messages = _few_shot_tool_calls()
    answer = _chat(llm_server, messages, max_tokens=60, tools=TOOLS, tool_choice="auto")
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_run_status"
    assert json.loads(call["function"]["arguments"]) == {"run_id": "42"}
    assert answer["usage"]["prompt_tokens"] == llm_server.prompt_tokens(messages, TOOLS)


def test_the_gguf_template_ignores_tools(llm_venv: Path, tmp_path: Path) -> None:
    """Why the harness brings its own template: with SmolLM2's, ``tools`` change nothing."""
    server = LlmServer(tmp_path, llm_venv, chat_template=None)
    server.start()
    try:
        server.wait_ready()
        messages = _few_shot_tool_calls()
        answer = _chat(server, messages, max_tokens=30, tools=TOOLS, tool_choice="required")
        plain = _chat(server, messages, max_tokens=30)
    finally:
        server.stop()
    assert "tool_calls" not in answer["choices"][0]["message"]
    assert answer["usage"]["prompt_tokens"] == plain["usage"]["prompt_tokens"]
    assert _content(answer) == _content(plain)


def test_a_server_that_cannot_start_fails_with_its_log(llm_venv: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jinja"
    broken.write_text("{% if %}")
    server = LlmServer(tmp_path, llm_venv, chat_template=broken)
    server.start()
    try:
        with pytest.raises(LlmHarnessError,
                           match=r"exited \(code 1\)[\s\S]*chat template parsing error"):
            server.wait_ready()
    finally:
        server.stop()


def test_time_per_short_completion(llm_server: LlmServer) -> None:
    _chat(llm_server, ASK, max_tokens=16)  # warm
    walls, per_token = [], []
    for n in range(5):
        started = time.monotonic()
        answer = _chat(llm_server, [{"role": "user", "content": f"Name a colour. ({n})"}],
                       max_tokens=16, cache_prompt=False)
        walls.append(time.monotonic() - started)
        per_token.append(answer["timings"]["predicted_per_token_ms"])
    print(f"\nshort completion (~35 prompt + <=16 answer tokens): median "
          f"{statistics.median(walls):.2f}s, max {max(walls):.2f}s; "
          f"{statistics.median(per_token):.0f} ms per generated token")
    assert max(walls) < 30


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_server_killed_mid_request_is_a_connection_error(llm_server_private: LlmServer,
                                                         stream: bool) -> None:
    server = llm_server_private
    body = {"messages": [{"role": "user", "content": "Write a long story about a dragon."}],
            "max_tokens": 1500, "temperature": 0, "stream": stream}
    outcome: list[BaseException | str] = []

    def ask() -> None:
        try:
            with httpx.Client(timeout=60, trust_env=False) as client, \
                    client.stream("POST", f"{server.base_url}/chat/completions",
                                  json=body) as response:
                outcome.append("".join(response.iter_text()))
        except BaseException as exc:  # the test inspects it
            outcome.append(exc)

    client = threading.Thread(target=ask, daemon=True)
    client.start()
    _wait(server.is_processing, 30, "the request started")
    pid = server.pid
    started = time.monotonic()
    server.kill()
    client.join(10)
    assert not client.is_alive(), "the client hangs on a killed server"
    (error,) = outcome
    assert isinstance(error, httpx.RemoteProtocolError), error  # a TransportError
    print(f"\nclient saw {type(error).__name__} {time.monotonic() - started:.2f}s after kill")
    assert pid is not None and not live_pids(pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", trust_env=False)


def test_stop_ends_the_server(llm_server_private: LlmServer) -> None:
    pid = llm_server_private.pid
    assert pid is not None and session_pids(pid)
    llm_server_private.stop()
    assert llm_server_private.pid is None
    assert not live_pids(pid)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{llm_server_private.url}/health", trust_env=False)
