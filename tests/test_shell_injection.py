"""No value reaches a shell unquoted: payloads arriving as run inputs, webhook bodies and an
upstream script's outputs are inserted into a string `command` as one literal word each,
through the real script adapter. No file is created, nothing runs, the node sees the text."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from textwrap import dedent

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run, write_flow

from interlock.api.main import create_app
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import runs as ops
from interlock.spec.expressions import render_params
from interlock.spec.loader import parse_flow
from interlock.states import RunState

PAYLOADS = [
    "2026-01-01; touch {marker}; #",
    "$(touch {marker})",
    "`touch {marker}`",
    "x\ntouch {marker}",
    "x && touch {marker}",
    "x | touch {marker}",
    "--output={marker}",
    "' ; touch {marker}; echo '",
    '" ; touch {marker}; echo "',
    "../../{marker}",
]

ECHO = """
id: echo
namespace: tests.inject
inputs: {day: {type: string, required: true}}
triggers:
  - webhook: {key: day}
nodes:
  show:
    uses: script
    with: {command: "printf '%s' {{ inputs.day }} > shown.txt; echo seen=ok >> $INTERLOCK_OUTPUT"}
  relay:
    uses: script
    with:
      command: ["sh", "-c", "printf 'path<<EOF\\n%s\\nEOF\\n' \\"$DAY\\" >> $INTERLOCK_OUTPUT"]
      env: {DAY: "{{ inputs.day }}"}
  report:
    uses: script
    needs: [relay]
    with: {command: "printf '%s' {{ nodes.relay.outputs.path }} > relayed.txt"}
"""


@pytest.mark.parametrize("template", PAYLOADS)
def test_a_run_input_and_an_upstream_output_stay_one_literal_word(
        template: str, embedded: EmbeddedDispatcher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    payload = template.format(marker=marker)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    flow, _ = ops.register(write_flow(tmp_path, ECHO).read_text())
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={"day": payload},
                           dispatcher=embedded)
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED, [(n.id, n.error) for n in detail.nodes]
    assert not marker.exists()
    # scripts run in the worker's directory: what each one printed is the value, verbatim
    assert (work / "shown.txt").read_text() == payload
    assert (work / "relayed.txt").read_text() == payload


def test_a_webhook_body_is_one_literal_word(embedded: EmbeddedDispatcher, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned-by-webhook"
    monkeypatch.chdir(tmp_path)
    with TestClient(create_app(dispatcher=embedded)) as client:
        client.headers.update(bearer())
        assert client.post("/api/v1/flows", json={"source": ECHO}).status_code == 201
        resp = client.post("/api/v1/webhooks/tests.inject/echo/day",
                           json={"day": f"2026-01-01; touch {marker}; #"})
        assert resp.status_code == 201, resp.text
        assert wait_run(resp.json()["id"]).state is RunState.SUCCEEDED
    assert not marker.exists()


def test_render_params_quotes_only_the_command_string() -> None:
    ctx = {"inputs": {"d": "a; b", "n": 3, "l": [1, "x y"]}}
    params = {"command": "run {{ inputs.d }} {{ inputs.n }} {{ inputs.l }}",
              "env": {"D": "{{ inputs.d }}"}, "args": ["{{ inputs.d }}"]}
    assert render_params(params, ctx) == {  # each value as Jinja prints it, one quoted word
        "command": "run 'a; b' 3 '[1, '\"'\"'x y'\"'\"']'", "env": {"D": "a; b"},
        "args": ["a; b"]}
    assert render_params({"command": "test {{ inputs.f }} = False"}, {"inputs": {"f": False}}) \
        == {"command": "test False = False"}
    assert render_params({"command": ["sh", "{{ inputs.d }}"]}, ctx) == \
        {"command": ["sh", "a; b"]}  # argv lists have no shell: values stay as they are


def test_expressions_in_an_inline_script_are_refused_with_their_line() -> None:
    source = dedent("""
        id: inline
        namespace: tests.inject
        inputs: {day: {type: string}}
        nodes:
          a:
            uses: script
            with:
              script: "echo {{ inputs.day }}"
    """).lstrip()
    with pytest.raises(SpecError) as caught:
        parse_flow(source, "inline.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 8 and "pass them through `env:`" in problem.message
    assert json.dumps(problem.__dict__)  # a plain, printable problem
