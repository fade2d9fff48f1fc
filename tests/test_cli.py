"""The `interlock` command, with embedded dispatch on a SQLite store."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from interlock.cli.main import app
from interlock.errors import Problem
from interlock.spec.loader import validate_paths
from tests.conftest import ROOT
from tests.helpers import write_flow

SQUARE = """
id: sq
namespace: tests.cli
inputs: {n: {type: integer, required: true}}
nodes:
  a: {uses: noop, with: {v: "{{ inputs.n }}"}}
  b: {uses: noop, needs: [a], with: {sq: "{{ nodes.a.outputs.v * nodes.a.outputs.v }}"}}
"""

# `b` fails when its `with:` renders (no such output), so `c` is skipped.
BROKEN = """
id: broken
namespace: tests.cli
nodes:
  a: {uses: noop, with: {v: 1}}
  b: {uses: noop, needs: [a], with: {w: "{{ nodes.a.outputs.missing }}"}}
  c: {uses: noop, needs: [b]}
"""


@pytest.fixture(autouse=True)
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    # Output as in an 80-column terminal or a pipe (Rich's default), whatever runs pytest.
    monkeypatch.setenv("COLUMNS", "80")


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert not isinstance(result.exception, (AssertionError, TypeError, AttributeError)), \
        result.output
    return result


def flat(text: str) -> str:
    """Text with Rich's line wrapping undone (for messages, where wrapping is not the point)."""
    return " ".join(text.split())


def run_json(flow: Path, *extra: str, code: int) -> dict[str, Any]:
    result = invoke("run", str(flow), "--json", *extra)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def square(sqlite_store: str, tmp_path: Path) -> Path:
    return write_flow(tmp_path, SQUARE, "square.yaml")


@pytest.fixture
def broken_run(sqlite_store: str, tmp_path: Path) -> dict[str, Any]:
    flow = write_flow(tmp_path, BROKEN, "broken.yaml")
    return run_json(flow, code=1)


# --- validate -----------------------------------------------------------------------------


def test_validate_good_flows_exits_0() -> None:
    good = ROOT / "tests" / "flows" / "good"
    result = invoke("validate", str(good / "minimal.yaml"), str(good))
    assert result.exit_code == 0, result.output
    assert "ok: 2 path(s), no problems" in result.output


def test_validate_bad_flow_exits_2_and_prints_every_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    # Problems short enough not to meet the line-wrapping bug below.
    Path("f.yaml").write_text("colour: red\nnodes:\n  a: {uses: noop}\n"
                              "  b: {uses: noop, bogus: 1}\n", encoding="utf-8")
    expected = validate_paths(["f.yaml"])
    assert len(expected) == 3
    result = invoke("validate", "f.yaml")
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    for problem in expected:
        assert str(problem) in lines
        assert str(problem).startswith(f"f.yaml:{problem.line}:{problem.col}: ")
    assert len(lines) == 3


def test_validate_json_lists_problems() -> None:
    bad = ROOT / "tests" / "flows" / "bad" / "many_problems.yaml"
    result = invoke("validate", str(bad), "--json")
    assert result.exit_code == 2
    problems = [Problem(**p) for p in json.loads(result.stdout)]
    assert problems == validate_paths([bad])
    assert len(problems) >= 5


def test_validate_prints_each_long_problem_on_one_line() -> None:
    bad = ROOT / "tests" / "flows" / "bad" / "many_problems.yaml"
    expected = validate_paths([bad])
    assert any(len(str(p)) > 80 for p in expected)
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert [str(p) for p in expected] == lines


# --- run ----------------------------------------------------------------------------------


def test_run_with_input_prints_json_and_exits_0(square: Path) -> None:
    detail = run_json(square, "--input", "n=3", code=0)
    assert detail["state"] == "succeeded"
    assert detail["inputs"] == {"n": 3}  # parsed as the declared integer type
    nodes = {n["id"]: n for n in detail["nodes"]}
    assert nodes["a"]["outputs"] == {"v": 3}
    assert nodes["b"]["outputs"] == {"sq": 9}
    assert detail["trigger"] == {"type": "manual", "by": f"cli:{getpass.getuser()}"}
    assert all(n["attempts"][0]["handle"]["external_id"] for n in detail["nodes"])


def test_run_without_json_prints_a_table(square: Path) -> None:
    result = invoke("run", str(square), "-i", "n=2")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "tests.cli/sq" in result.output


def test_run_whose_node_fails_exits_1(broken_run: dict[str, Any]) -> None:
    assert broken_run["state"] == "failed"
    states = {n["id"]: n["state"] for n in broken_run["nodes"]}
    assert states == {"a": "succeeded", "b": "failed", "c": "skipped"}


@pytest.mark.parametrize(("args", "fragments"), [
    (["--input", "m=3", "--input", "n=1"], ["input `m`", "the flow declares no such input",
                                            "(declared: n)"]),
    (["--input", "n=abc"], ["input `n`: expected integer, got str 'abc'"]),
    (["--input", "n=1.5"], ["input `n`: expected integer, got float 1.5"]),
    (["--input", "n=true"], ["input `n`: expected integer, got a boolean"]),
    ([], ["input `n`: required integer input is missing"]),
    (["--input", "n"], ["--input 'n': write name=value"]),
])
def test_run_with_bad_input_exits_2_naming_it(square: Path, args: list[str],
                                              fragments: list[str]) -> None:
    result = invoke("run", str(square), *args)
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in flat(result.output)
    assert "Traceback" not in result.output
    listed = invoke("runs", "--json")
    assert json.loads(listed.stdout)["runs"] == []  # nothing was started


@pytest.mark.parametrize("value", ["[/x]", "[bold]"])
def test_run_bad_input_message_shows_the_value_verbatim(square: Path, value: str) -> None:
    result = invoke("run", str(square), "--input", f"n={value}")
    assert result.exit_code == 2, result.output
    assert f"expected integer, got str '{value}'" in flat(result.output)


def test_run_of_invalid_flow_exits_2_with_problems(sqlite_store: str, tmp_path: Path) -> None:
    flow = write_flow(tmp_path, "id: x\nnodes: {a: {uses: nope}}\n", "x.yaml")
    result = invoke("run", str(flow))
    assert result.exit_code == 2
    assert f"{flow}:2:" in result.output and "nope" in flat(result.output)


# --- status, runs, logs -------------------------------------------------------------------


def test_status_json(broken_run: dict[str, Any]) -> None:
    result = invoke("status", broken_run["id"], "--json")
    assert result.exit_code == 0, result.output
    detail = json.loads(result.stdout)
    assert detail["id"] == broken_run["id"]
    assert detail["state"] == "failed"
    assert [n["id"] for n in detail["nodes"]] == ["a", "b", "c"]
    assert detail["nodes"][1]["reason"] == "`with:` failed to render"


def test_status_table_and_unknown_run(broken_run: dict[str, Any]) -> None:
    result = invoke("status", broken_run["id"])
    assert result.exit_code == 0
    assert "failed" in result.output and "upstream `b` failed" in flat(result.output)
    missing = invoke("status", "nope")
    assert missing.exit_code == 1
    assert "error: run `nope` does not exist" in flat(missing.output)


def test_runs_json_newest_first_with_filters(square: Path, tmp_path: Path) -> None:
    first = run_json(square, "-i", "n=1", code=0)["id"]
    broken = run_json(write_flow(tmp_path, BROKEN, "broken.yaml"), code=1)["id"]
    last = run_json(square, "-i", "n=2", code=0)["id"]
    result = invoke("runs", "--json")
    assert result.exit_code == 0
    page = json.loads(result.stdout)
    assert [r["id"] for r in page["runs"]] == [last, broken, first]
    assert page["next_cursor"] is None
    failed = json.loads(invoke("runs", "--json", "--state", "failed").stdout)
    assert [r["id"] for r in failed["runs"]] == [broken]
    by_flow = json.loads(invoke("runs", "--json", "--flow", "tests.cli/sq").stdout)
    assert [r["id"] for r in by_flow["runs"]] == [last, first]
    limited = json.loads(invoke("runs", "--json", "--limit", "1").stdout)
    assert [r["id"] for r in limited["runs"]] == [last] and limited["next_cursor"]
    assert invoke("runs", "--state", "sleeping").exit_code == 2


def test_runs_table_shows_whole_run_ids(square: Path) -> None:
    run_id = run_json(square, "-i", "n=1", code=0)["id"]
    result = invoke("runs")
    assert result.exit_code == 0
    assert run_id in result.output


def test_logs(broken_run: dict[str, Any]) -> None:
    run_id = broken_run["id"]
    result = invoke("logs", run_id)
    assert result.exit_code == 0, result.output
    assert "a (attempt 1)" in result.output
    assert "b (attempt" not in result.output  # b failed before any attempt
    as_json = invoke("logs", run_id, "a", "--json")
    assert as_json.exit_code == 0
    assert json.loads(as_json.stdout) == [{"run_id": run_id, "node_id": "a", "attempt": 1,
                                           "text": "", "cursor": None, "truncated": False}]
    no_node = invoke("logs", run_id, "zz")
    assert no_node.exit_code == 1
    assert f"run `{run_id}` has no node `zz` (nodes: a, b, c)" in flat(no_node.output)
    no_attempt = invoke("logs", run_id, "b")
    assert no_attempt.exit_code == 1 and "has no attempt" in flat(no_attempt.output)


# --- cancel and retry ---------------------------------------------------------------------


def test_cancel_finished_run_exits_1_with_message(square: Path) -> None:
    run_id = run_json(square, "-i", "n=1", code=0)["id"]
    result = invoke("cancel", run_id)
    assert result.exit_code == 1
    assert (f"error: run `{run_id}` is succeeded; only pending or running runs can be "
            "cancelled") in flat(result.output)
    assert "cancel requested" not in result.output
    status = json.loads(invoke("status", run_id, "--json").stdout)
    assert status["state"] == "succeeded"
    assert invoke("cancel", "nope").exit_code == 1


def test_retry_failed_run(broken_run: dict[str, Any]) -> None:
    run_id = broken_run["id"]
    result = invoke("retry", run_id)
    assert result.exit_code == 1, result.output  # it fails again, for the same reason
    assert f"retrying b, c of run {run_id}" in flat(result.output)
    again = invoke("retry", run_id, "--json")
    assert again.exit_code == 1
    detail = json.loads(again.stdout)
    assert detail["state"] == "failed" and detail["reason"] == "failed: b"
    nodes = {n["id"]: n for n in detail["nodes"]}
    assert len(nodes["a"]["attempts"]) == 1  # kept, not re-run
    assert nodes["b"]["error"] == broken_run["nodes"][1]["error"]
    stored = json.loads(invoke("status", run_id, "--json").stdout)
    assert [n["state"] for n in stored["nodes"]] == ["succeeded", "failed", "skipped"]


def test_retry_of_succeeded_run_exits_1(square: Path) -> None:
    run_id = run_json(square, "-i", "n=1", code=0)["id"]
    result = invoke("retry", run_id)
    assert result.exit_code == 1
    assert "only failed or cancelled runs can be retried" in flat(result.output)


# --- schema -------------------------------------------------------------------------------


def test_schema_is_current(tmp_path: Path) -> None:
    committed = (ROOT / "schemas" / "flow.schema.json").read_text(encoding="utf-8")
    result = invoke("schema")
    assert result.exit_code == 0
    assert result.stdout == committed, \
        "schemas/flow.schema.json is stale: run `interlock schema -o schemas/flow.schema.json`"
    written = tmp_path / "out.json"
    assert invoke("schema", "-o", str(written)).exit_code == 0
    assert written.read_text(encoding="utf-8") == committed
    schema = json.loads(committed)
    assert schema["$id"].endswith("/flow.schema.json")
    assert {"id", "nodes"} <= set(schema["required"])


def test_schema_title_is_interlock_flow() -> None:
    result = invoke("schema")
    assert json.loads(result.stdout)["title"] == "Interlock flow"


def test_run_a_missing_file_is_a_clear_error(sqlite_store: str, tmp_path: Path) -> None:
    result = invoke("run", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml: no such file" in flat(result.output)
    assert "Traceback" not in result.output


def test_run_a_registered_flow_by_its_reference(square: Path) -> None:
    unknown = invoke("run", "tests.cli/sq")
    assert unknown.exit_code == 1
    assert "flow `tests.cli/sq` is not registered" in flat(unknown.output)
    run_json(square, "--input", "n=2", code=0)  # registers it
    by_ref = run_json(Path("tests.cli/sq"), "--input", "n=5", code=0)
    assert by_ref["nodes"][1]["outputs"] == {"sq": 25}
    assert by_ref["revision"] == 1


def test_an_unreachable_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.config.env import settings
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    settings.cache_clear()
    try:
        result = invoke("runs")
    finally:
        settings.cache_clear()
    assert result.exit_code == 1
    message = flat(result.output)
    assert "cannot use the store at postgresql+psycopg://u:***@127.0.0.1:1/x" in message
    assert "secret" not in message and "Traceback" not in result.output
