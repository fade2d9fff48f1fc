"""Hostile values from every source reach every adapter that builds a command line or a path,
and nothing runs but the literal value.

Sources: (a) a run input, (b) a webhook body (on PostgreSQL), (c) a real Airflow XCom
(`interlock_hostile` in tests/airflow/dags/), (d) real Dagster output metadata
(`interlock_hostile_job` in tests/dagster/defs.py), (e) an upstream script's outputs. Sinks,
one flow per source with every payload in it: a script's string `command` (a shell line) and
argv list, a robot's `variables:`, `tasks:` (each a `--task` option) and `variable_files:`
(paths), and a cron job's `run: now` (the value as the job name).

Each payload aims at a file named `pwned-*` in the worker's directory, prints `id`'s `uid=`,
or spells a secret reference. After each run nothing may be named `pwned-*` under the test's
directory (the worker's cwd, INTERLOCK_HOME with every attempt's log and robot output) and no
file, log, output or error may hold `uid=` or the secret's value; each sink either fails with
an error or shows the value verbatim. `test_the_detector_sees_an_unquoted_construction`
proves the detector sees an injection. The tests at the end hold what this test first found:
a NUL byte fails the node with a clear error (and, quoted in an error, no longer wedges a
run on PostgreSQL); the script of an argv `[sh, -c, ...]` is quoted like a string `command`;
values in `interpreter` or in another interpreter's code item are refused at validation.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml
from airflow_flows import node, push_api, start
from airflow_harness import AirflowServer
from dagster_harness import DagsterServer
from helpers import bearer, wait_run

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.store.views import RunDetail

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from interlock.api.main import create_app

pytestmark = pytest.mark.timeout(600)

# Name -> value. Copied, on purpose, into tests/airflow/dags/interlock_hostile.py and
# tests/dagster/defs.py (foreign systems send their own values); the Airflow and Dagster
# tests check the copies are still these.
PAYLOADS: dict[str, str] = {
    "semicolon": "2026-01-01; id > pwned-semicolon; id",
    "subst": "$(id > pwned-subst)",
    "backtick": "`id > pwned-backtick`",
    "newline": "2026-01-01\nid > pwned-newline\nid",
    "and": "x && id > pwned-and",
    "pipe": "x | tee pwned-pipe",
    "squote": "' ; id > pwned-squote; echo '",
    "dquote": '" ; id > pwned-dquote; echo "',
    "option": "--outputdir=pwned-outdir",
    "dash_c": "-c",
    "dotdot": "../../outside-vars.yaml",
    "jinja": "{{ 7 * 7 }}",
    "robot_eval": "${{ __import__('os').system('id > pwned-robot-eval') }}",
    "secret": "{{ secret('HOSTILE_TEST_SECRET') }}",
    "nul": "x\x00; id > pwned-nul",
}
NUL = "nul"
ARGV_SAFE = [name for name in PAYLOADS if name != NUL]  # an argv item cannot hold NUL
NUL_SINKS = ("sh_nul", "argv_nul", "robot_nul")
SHELL_ACTIVE = ["semicolon", "subst", "backtick", "newline", "and", "pipe", "squote", "dquote"]

MARKER_GLOB = "pwned*"
ID_OUTPUT = re.compile(rb"uid=\d+\(")  # what `id` prints: uid=0(root) gid=...
ROBOT_TASK = "Record values"
ROBOT = dedent(f"""
    *** Settings ***
    Library    interlock_rpa.Outputs

    *** Variables ***
    @{{values}}    not given

    *** Tasks ***
    {ROBOT_TASK}
        Log Many    @{{values}}
        Set Interlock Output    values    ${{values}}
""").lstrip()
# `{{ secret('HOSTILE_TEST_SECRET') }}` as a value must stay text: this must never show up.
SECRET_ENV = "HOSTILE_TEST_SECRET"
SECRET_VALUE = "hostile-test-secret-value-0123456789"
AIRFLOW_SECRET = "AIRFLOW_TEST_EVENTS_SECRET"
DAGSTER_SECRET = "DAGSTER_TEST_EVENTS_SECRET"
CRON_SYSTEM = "cron/hostile"
CRON_MAPPING = dedent(f"""
    system: {CRON_SYSTEM}
    source: tests
    jobs:
      report: {{schedule: "@daily", command: "echo cron-ran", monitor: false}}
""").lstrip()
# Python that records the argv it was given, exactly, as the node's outputs.
RECORD_ARGV = ('import json, os, sys; '
               'json.dump({"args": sys.argv[1:]}, open(os.environ["INTERLOCK_OUTPUT"], "w"))')


# --- the flow: every sink, fed from one source ------------------------------------------------

def _ref(source: str, name: str) -> str:
    return f"{{{{ {source}.p_{name} }}}}"


def _sinks(source: str, needs: list[str]) -> dict[str, Any]:
    py = sys.executable
    record = f"{shlex.quote(py)} -c {shlex.quote(RECORD_ARGV)}"
    words = " ".join(_ref(source, n) for n in ARGV_SAFE)
    with_needs = {"needs": needs} if needs else {}
    nodes: dict[str, Any] = {
        "sh": {"uses": "script", **with_needs, "with": {"command": f"{record} {words}"}},
        "sh_nul": {"uses": "script", **with_needs,
                   "with": {"command": f"{record} {_ref(source, NUL)}"}},
        "argv": {"uses": "script", **with_needs,
                 "with": {"command": [py, "-c", RECORD_ARGV,
                                      *(_ref(source, n) for n in ARGV_SAFE)]}},
        "argv_nul": {"uses": "script", **with_needs,
                     "with": {"command": [py, "-c", RECORD_ARGV, _ref(source, NUL)]}},
        "robot": {"uses": "rpa", **with_needs, "with": {
            "robot": "hostile.robot",
            "variables": {"values": [_ref(source, n) for n in PAYLOADS]},
            "tasks": [ROBOT_TASK, *(_ref(source, n) for n in ARGV_SAFE)]}},
        "robot_nul": {"uses": "rpa", **with_needs, "with": {
            "robot": "hostile.robot", "tasks": [ROBOT_TASK, _ref(source, NUL)]}},
    }
    for name in PAYLOADS:
        nodes[f"varfile_{name}"] = {"uses": "rpa", **with_needs, "with": {
            "robot": "hostile.robot", "variable_files": [_ref(source, name)]}}
        if name != NUL:  # test_a_nul_byte_quoted_in_an_error_does_not_wedge_the_run
            nodes[f"cron_{name}"] = _cron(source, name, needs)
    return nodes


def _cron(source: str, name: str, needs: list[str]) -> dict[str, Any]:
    return {"uses": "cron", **({"needs": needs} if needs else {}), "with": {
        "system": CRON_SYSTEM, "job": _ref(source, name), "run": "now"}}


def flow_source(flow_id: str, source: str, src: dict[str, Any] | None = None) -> str:
    """A flow with every sink fed by ``source`` (`inputs`, or `nodes.src.outputs` of the
    node ``src``); with inputs, a webhook trigger too."""
    flow: dict[str, Any] = {"id": flow_id, "namespace": "tests.hostile"}
    if src is None:
        flow["inputs"] = {f"p_{n}": {"type": "string", "required": True} for n in PAYLOADS}
        flow["triggers"] = [{"webhook": {"key": "hostile"}}]
        # the same reference written in the flow does resolve: the payload's is not inert
        flow["nodes"] = {"secret_ref": {"uses": "script", "with": {
            "env": {"S": f"{{{{ secret('{SECRET_ENV}') }}}}"},
            "command": 'printf "length=%s\\n" "${#S}" >> "$INTERLOCK_OUTPUT"'}},
            **_sinks(source, [])}
    else:
        flow["nodes"] = {"src": src, **_sinks(source, ["src"])}
    return yaml.safe_dump(flow, sort_keys=False, width=10_000)


# --- the detector ---------------------------------------------------------------------------

def injected(root: Path) -> list[str]:
    """What an injection left under ``root``: files named `pwned*`, files holding `uid=`
    or the secret's value."""
    found = [f"made {p}" for p in root.rglob(MARKER_GLOB)]
    for path in root.rglob("*"):
        data = path.read_bytes() if path.is_file() else b""
        if ID_OUTPUT.search(data):
            found.append(f"`id` output in {path}")
        if SECRET_VALUE.encode() in data:
            found.append(f"the secret's value in {path}")
    return found


def _logs(run_id: str, detail: RunDetail) -> str:
    """The log of every node that started a process (a refused one has none)."""
    texts = []
    for n in detail.nodes:
        try:
            texts.append(ops.node_logs(run_id, n.id).text)
        except ValueError:  # refused at submit: no attempt directory, no log
            assert n.state.value == "failed", (n.id, n.state)
    return "\n".join(texts)


def check_run(run_id: str, root: Path, *, timeout: float = 120.0) -> RunDetail:
    """The run's sinks each saw the literal values or refused them; nothing ran."""
    detail = wait_run(run_id, timeout=timeout)
    by_id = {n.id: n for n in detail.nodes}
    if "src" in by_id and by_id["src"].state.value != "succeeded":
        raise AssertionError(f"{by_id['src'].error}\n{ops.node_logs(run_id, 'src').text[-4000:]}")
    problems = injected(root)
    assert problems == [], problems
    logs = _logs(run_id, detail)  # in files under root too; read as `interlock logs` shows them
    for text in (logs, json.dumps([(n.outputs, n.error) for n in detail.nodes])):
        assert not ID_OUTPUT.search(text.encode()), "`id` ran: its output is in a log/output"
        assert SECRET_VALUE not in text, "a value resolved as a secret reference"
    ok = [PAYLOADS[n] for n in ARGV_SAFE]
    for sink in ("sh", "argv"):
        assert by_id[sink].state.value == "succeeded", (sink, by_id[sink].error)
        assert by_id[sink].outputs["args"] == ok, sink  # each value one word, verbatim
    for sink in NUL_SINKS:  # refused; how clearly: test_a_nul_byte_in_a_command_line...
        assert by_id[sink].state.value in ("failed", "lost"), (sink, by_id[sink].state)
    robot = by_id["robot"]
    assert robot.state.value == "succeeded", robot.error
    assert robot.outputs["values"] == list(PAYLOADS.values())
    assert list(robot.outputs["robot"]["tasks"]) == [ROBOT_TASK]  # options stayed values
    assert "/attempts/" in robot.outputs["artifacts"]["output_dir"]
    for name in PAYLOADS:
        varfile = by_id[f"varfile_{name}"]
        assert varfile.state.value == "failed", (name, varfile.state, varfile.outputs)
        assert (varfile.error or "").startswith("variable file "), (name, varfile.error)
    # the one that exists is refused for where it is (interlock_rpa.sources, paths.inside)
    dotdot = by_id["varfile_dotdot"].error or ""
    assert PAYLOADS["dotdot"] in dotdot and "no such file" not in dotdot, dotdot
    for name in ARGV_SAFE:
        cron, value = by_id[f"cron_{name}"], PAYLOADS[name]
        assert cron.state.value == "failed", (name, cron.state)
        assert f"no job `{value}` in {CRON_SYSTEM}" in (cron.error or ""), (name, cron.error)
    return detail


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The worker's directory (tmp/work/cwd, where scripts and robots run), the robot, a
    variables file two levels up that `../../outside-vars.yaml` names, the cron mapping and
    a systems file (extended by the Airflow and Dagster tests)."""
    cwd = tmp_path / "work" / "cwd"
    cwd.mkdir(parents=True)
    (cwd / "hostile.robot").write_text(ROBOT, encoding="utf-8")
    (tmp_path / "outside-vars.yaml").write_text("leaked: read from outside cwd\n")
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "cron-hostile.yaml").write_text(CRON_MAPPING, encoding="utf-8")
    monkeypatch.setenv("INTERLOCK_MAPPINGS", str(mappings))
    write_systems(tmp_path, {})
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
    monkeypatch.setenv(SECRET_ENV, SECRET_VALUE)
    monkeypatch.chdir(cwd)
    return tmp_path


def write_systems(directory: Path, extra: dict[str, Any]) -> None:
    systems = {CRON_SYSTEM: {"events_secret": {"env": SECRET_ENV}}, **extra}
    (directory / "systems.yaml").write_text(yaml.safe_dump({"systems": systems}))


@pytest.fixture
def dispatcher(sqlite_store: str) -> Iterator[EmbeddedDispatcher]:
    d = EmbeddedDispatcher(threads=8, jobs=periodic_jobs())
    yield d
    d.close()


# --- the tests ------------------------------------------------------------------------------

def test_the_detector_sees_an_unquoted_construction(tmp_path: Path) -> None:
    """Pasted into a shell line as a naive template would (bare, or inside the quotes it
    breaks out of), each shell payload runs `id` into its marker."""
    quotes = {"squote": "'", "dquote": '"'}
    for name in SHELL_ACTIVE:
        cwd = tmp_path / name
        cwd.mkdir()
        quote = quotes.get(name, "")
        subprocess.run(["/bin/sh", "-c", f"echo {quote}{PAYLOADS[name]}{quote}"], cwd=cwd,
                       check=False, capture_output=True, timeout=10)
        assert f"made {cwd / f'pwned-{name}'}" in injected(tmp_path), name
    # and a robot evaluates `${{ }}` written into its own source
    robot = tmp_path / "eval" / "eval.robot"
    robot.parent.mkdir()
    robot.write_text(f"*** Tasks ***\nEval\n    Log    {PAYLOADS['robot_eval']}\n")
    subprocess.run([sys.executable, "-m", "robot", "--rpa", "--output", "NONE", "--log",
                    "NONE", "--report", "NONE", robot.name], cwd=robot.parent,
                   capture_output=True, check=False, timeout=60)
    assert ID_OUTPUT.match((robot.parent / "pwned-robot-eval").read_bytes())
    # and a leaked secret
    (tmp_path / "leak.txt").write_text(f"token={SECRET_VALUE}")
    assert f"the secret's value in {tmp_path / 'leak.txt'}" in injected(tmp_path)


def test_run_inputs(root: Path, dispatcher: EmbeddedDispatcher) -> None:
    run_id = start(flow_source("from-inputs", "inputs"), dispatcher,
                   **{f"p_{n}": v for n, v in PAYLOADS.items()})
    detail = check_run(run_id, root)
    assert node(detail, "secret_ref").outputs == {"length": len(SECRET_VALUE)}


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)  # the others: SQLite
def test_a_webhook_body(root: Path, embedded: EmbeddedDispatcher) -> None:
    with TestClient(create_app(dispatcher=embedded)) as client:
        client.headers.update(bearer())
        source = flow_source("from-webhook", "inputs")
        assert client.post("/api/v1/flows", json={"source": source}).status_code == 201
        resp = client.post("/api/v1/webhooks/tests.hostile/from-webhook/hostile",
                           json={f"p_{n}": v for n, v in PAYLOADS.items()})
        assert resp.status_code == 201, resp.text
        check_run(resp.json()["id"], root)


def test_an_upstream_scripts_outputs(root: Path, dispatcher: EmbeddedDispatcher) -> None:
    emit = ("import json, os; json.dump(json.loads(bytes.fromhex(os.environ['PAYLOADS'])), "
            "open(os.environ['INTERLOCK_OUTPUT'], 'w'))")
    payloads = json.dumps({f"p_{n}": v for n, v in PAYLOADS.items()}).encode().hex()
    src = {"uses": "script", "with": {  # in hex: `{{ }}` in a flow would be an expression
        "command": [sys.executable, "-c", emit], "env": {"PAYLOADS": payloads}}}
    run_id = start(flow_source("from-script", "nodes.src.outputs", src), dispatcher)
    detail = check_run(run_id, root)
    assert node(detail, "src").outputs == {f"p_{n}": v for n, v in PAYLOADS.items()}


def test_airflow_xcom(root: Path, airflow_server: AirflowServer,
                      dispatcher: EmbeddedDispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    write_systems(root, {airflow_server.system: {
        "url": airflow_server.url, "timeout": 30, "events_secret": {"env": AIRFLOW_SECRET}}})
    monkeypatch.setenv(AIRFLOW_SECRET, airflow_server.events_secret)
    _wait_parsed(airflow_server, "interlock_hostile")
    src = {"uses": "airflow", "with": {"system": airflow_server.system,
                                       "dag_id": "interlock_hostile", "outputs_from": ["emit"],
                                       "unpause": True},
           # on a loaded 2-core host Airflow's task runner has failed `emit` before it ran
           "retry": {"attempts": 2}}
    with push_api(airflow_server.events_port, dispatcher):
        run_id = start(flow_source("from-airflow", "nodes.src.outputs", src), dispatcher)
        detail = check_run(run_id, root, timeout=180)
    # what Airflow sent is the test's PAYLOADS, NUL byte included
    assert node(detail, "src").outputs["emit"] == {f"p_{n}": v for n, v in PAYLOADS.items()}


def test_dagster_output_metadata(root: Path, dagster_server: DagsterServer,
                                 dispatcher: EmbeddedDispatcher,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_systems(root, {"dagster/test": {
        "url": dagster_server.url, "timeout": 10, "events_secret": {"env": DAGSTER_SECRET}}})
    monkeypatch.setenv(DAGSTER_SECRET, dagster_server.events_secret)
    src = {"uses": "dagster", "with": {"system": "dagster/test", "job": "interlock_hostile_job"}}
    with push_api(dagster_server.events_port, dispatcher):
        run_id = start(flow_source("from-dagster", "nodes.src.outputs", src), dispatcher)
        detail = check_run(run_id, root, timeout=180)
    assert node(detail, "src").outputs["hostile_emit.result"] == \
        {f"p_{n}": v for n, v in PAYLOADS.items()}


def _wait_parsed(server: AirflowServer, dag_id: str, timeout: float = 120.0) -> None:
    """A DAG file the harness does not wait for may be parsed after the server is healthy."""
    deadline = time.monotonic() + timeout
    while server.api("GET", f"/api/v2/dags/{dag_id}").status_code != 200:
        assert time.monotonic() < deadline, f"{dag_id} not parsed after {timeout}s"
        time.sleep(0.5)


# --- NUL bytes: refused, but not yet cleanly ------------------------------------------------

NUL_FLOW = """
id: nul
namespace: tests.hostile
inputs: {v: {type: string, required: true}}
nodes:
  sh: {uses: script, with: {command: "printf '%s' {{ inputs.v }}"}}
  argv: {uses: script, with: {command: [printf, "%s", "{{ inputs.v }}"]}}
  robot: {uses: rpa, with: {robot: hostile.robot, tasks: ["Record values", "{{ inputs.v }}"]}}
"""


def test_a_nul_byte_in_a_command_line_fails_the_node_with_a_clear_error(
        root: Path, dispatcher: EmbeddedDispatcher) -> None:
    detail = wait_run(start(NUL_FLOW, dispatcher, v=PAYLOADS[NUL]), timeout=60)
    assert injected(root) == []
    for n in detail.nodes:
        assert n.state.value == "failed" and "NUL" in (n.error or ""), (n.id, n.state, n.error)


def test_a_nul_byte_quoted_in_an_error_does_not_wedge_the_run(
        root: Path, embedded: EmbeddedDispatcher) -> None:
    """PostgreSQL refuses NUL in text columns: the error is stored with U+FFFD instead, and
    the run ends (it used to roll back its own FAILED transition forever)."""
    source = yaml.safe_dump({"id": "nul-cron", "namespace": "tests.hostile",
                             "inputs": {f"p_{NUL}": {"type": "string", "required": True}},
                             "nodes": {"cron": _cron("inputs", NUL, [])}})
    run_id = start(source, embedded, **{f"p_{NUL}": PAYLOADS[NUL]})
    (cron,) = wait_run(run_id, timeout=8).nodes
    assert cron.state.value == "failed" and "no job" in (cron.error or ""), cron.error
    assert injected(root) == []


# --- values a flow itself hands to a shell or splits into words ------------------------------

def test_a_value_in_the_script_of_an_argv_shell_is_one_quoted_word(
        root: Path, dispatcher: EmbeddedDispatcher) -> None:
    """`[sh, -c, SCRIPT]` is a shell command line like a string `command`: its `{{ }}` are
    quoted the same way, so the value is echoed, not run."""
    source = yaml.safe_dump({"id": "own-shell", "namespace": "tests.hostile",
                             "inputs": {"v": {"type": "string", "required": True}},
                             "nodes": {"run": {"uses": "script", "with": {"command": [
                                 "/bin/sh", "-ec",
                                 "printf 'shown=%s\\n' {{ inputs.v }} >> $INTERLOCK_OUTPUT"]}}}})
    detail = wait_run(start(source, dispatcher, v=PAYLOADS["semicolon"]), timeout=60)
    (run,) = detail.nodes
    assert run.state.value == "succeeded", run.error
    assert run.outputs["shown"] == PAYLOADS["semicolon"].split("\n")[0]
    assert injected(root) == []


@pytest.mark.parametrize("with_", [
    {"script": "echo hello\n", "interpreter": "/bin/sh {{ inputs.v }}"},
    {"command": [sys.executable, "-c", "print('{{ inputs.v }}')"]},
], ids=["interpreter", "python-code"])
def test_values_pasted_into_code_are_refused_before_anything_runs(
        with_: dict[str, Any], root: Path) -> None:
    """An interpreter's words and another interpreter's code item take no expression: the
    flow is refused with the place and the `env:` way to pass the value."""
    source = yaml.safe_dump({"id": "own-code", "namespace": "tests.hostile",
                             "inputs": {"v": {"type": "string", "required": True}},
                             "nodes": {"run": {"uses": "script", "with": with_}}})
    with pytest.raises(SpecError, match="pass them through `env:`"):
        ops.register(source)
    assert injected(root) == []
