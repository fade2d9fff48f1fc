"""`uses: rpa`: real Robot Framework robots through the real adapter and the real engine.

No mocks: every robot runs as `python -m robot` under the script adapter's runner; the
robots are in `tests/robots/` and `examples/robots/`. Leftover processes are killed by
pid at teardown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from interlock_rpa import RpaAdapter
from interlock_rpa.library import Outputs
from interlock_rpa.params import RpaParams
from interlock_rpa.results import ResultsError, RobotResults, read_results
from interlock_rpa.syntax import check_syntax
from interlock_script.layout import AttemptPaths, dir_name_for
from interlock_script.procs import group_alive, read_pid_file, signal_group
from pydantic import ValidationError

import interlock.config.env
from interlock.adapters.contract import Handle, JobSpec
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import Rejected
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.states import NodeState, RunState
from interlock.store.views import NodePublic, RunDetail
from tests.helpers import wait_finished, wait_run, write_flow

ROOT = Path(__file__).resolve().parents[1]
ROBOTS = ROOT / "tests" / "robots"
EXAMPLES = ROOT / "examples" / "robots"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


# --- fixtures and helpers ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_leftovers(tmp_path: Path) -> Iterator[None]:
    yield
    for runner_pid in tmp_path.rglob("runner.pid"):
        paths = AttemptPaths(runner_pid.parent)
        runner = read_pid_file(paths.runner_pid)
        if runner is not None and runner.alive():
            os.kill(runner.pid, signal.SIGKILL)
        child = read_pid_file(paths.child_pid)
        if child is not None and group_alive(child.pid):
            signal_group(child.pid, signal.SIGKILL)


@pytest.fixture
def engine(sqlite_store: str) -> Iterator[EmbeddedDispatcher]:
    """The embedded dispatcher on SQLite: for what does not depend on the store."""
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RpaAdapter]:
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path / "home"))
    # `cwd` must be inside a work root: the worker's directory and this test's folder.
    monkeypatch.setenv("INTERLOCK_WORK_ROOTS", f"{Path.cwd()}{os.pathsep}{tmp_path}")
    interlock.config.env.settings.cache_clear()
    yield RpaAdapter()
    interlock.config.env.settings.cache_clear()


def run_flow(dispatcher: EmbeddedDispatcher, source: str, inputs: dict[str, object] | None = None,
             *, directory: Path) -> RunDetail:
    text = write_flow(directory, source.replace("ROBOTS", str(ROBOTS))).read_text()
    flow, _ = ops.register(text)
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs=inputs or {},
                           dispatcher=dispatcher)
    return wait_run(run_id, timeout=60)


def nodes_of(detail: RunDetail) -> dict[str, NodePublic]:
    return {n.id: n for n in detail.nodes}


def last_outputs(node: NodePublic) -> dict[str, Any]:
    """The outputs of the node's last attempt (kept for failed attempts too)."""
    return node.attempts[-1].outputs


def job(params: dict[str, object], *, timeout_s: float | None = None) -> JobSpec:
    return JobSpec(run_id="run-rpa", node_id="robot", attempt=1, params=params,
                   traceparent=TRACEPARENT, timeout_s=timeout_s)


def run_robot(robot: Path, output_dir: Path, *args: str) -> Path:
    """Run Robot Framework directly (no Interlock): for the parser's tests."""
    subprocess.run([sys.executable, "-m", "robot", "--rpa", "--outputdir", str(output_dir),
                    "--consolecolors", "off", *args, str(robot)],
                   capture_output=True, check=False, timeout=60)
    return output_dir / "output.xml"


# --- robots through the engine ----------------------------------------------------------

PASS_AND_FAIL = """
id: pass-and-fail
namespace: tests.rpa
nodes:
  passing: {uses: rpa, with: {robot: ROBOTS/passing.robot}}
  failing: {uses: rpa, with: {robot: ROBOTS/reconcile.robot}}
"""


def test_passing_and_failing_robots(embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    detail = run_flow(embedded, PASS_AND_FAIL, directory=tmp_path)
    nodes = nodes_of(detail)
    assert detail.state is RunState.FAILED

    passing = nodes["passing"]
    assert passing.state is NodeState.SUCCEEDED, passing.error
    out = passing.outputs
    # set by `Set Interlock Output(s)`, types kept
    assert out["invoices"] == 3
    assert out["ids"] == ["INV-1", "INV-2", "INV-3"]
    assert out["totals"] == {"net": 100.5, "tax": 20}
    assert out["ok"] is True
    assert out["label"] == "batch 7"
    robot = out["robot"]
    assert isinstance(robot, dict)
    assert robot["status"] == "PASS"
    assert (robot["passed"], robot["failed"], robot["skipped"]) == (2, 0, 0)
    assert {name: t["status"] for name, t in robot["tasks"].items()} == {
        "Count invoices": "PASS", "Describe batch": "PASS"}
    artifacts = out["artifacts"]
    assert isinstance(artifacts, dict)
    for name in ("output_xml", "log_html", "report_html"):
        assert Path(artifacts[name]).is_file(), name
    assert (Path(artifacts["output_dir"]) / "summary.txt").read_text() == "3 invoices"
    assert Path(artifacts["output_dir"]).is_relative_to(settings().attempts_dir)
    handle = passing.attempts[-1].handle
    assert handle is not None and handle.kind == "rpa"
    assert handle.url == Path(artifacts["log_html"]).as_uri()

    failing = nodes["failing"]
    assert failing.state is NodeState.FAILED
    assert failing.error == 'task "Reconcile invoices" failed: Invoice total mismatch: 120 != 100'
    tasks = last_outputs(failing)["robot"]["tasks"]
    assert tasks["Load invoices"]["status"] == "PASS"
    assert tasks["Reconcile invoices"] == {
        "status": "FAIL", "message": "Invoice total mismatch: 120 != 100",
        "elapsed_s": tasks["Reconcile invoices"]["elapsed_s"]}
    assert last_outputs(failing)["loaded"] == 2  # set before the failure: kept
    assert failing.attempts[-1].remote_status == "FAIL: 2 tasks, 1 passed, 1 failed, 0 skipped"


SELECTION = """
id: selection
namespace: tests.rpa
nodes:
  only_load: {uses: rpa, with: {robot: ROBOTS/reconcile.robot, tasks: [Load invoices]}}
  by_pattern: {uses: rpa, with: {robot: ROBOTS/reconcile.robot, tasks: ["Reconcile ?nvoice*"]}}
  no_match: {uses: rpa, with: {robot: ROBOTS/reconcile.robot, tasks: [No such task]}}
"""


def test_task_selection_runs_only_the_selected_tasks(engine: EmbeddedDispatcher,
                                                     tmp_path: Path) -> None:
    nodes = nodes_of(run_flow(engine, SELECTION, directory=tmp_path))

    only_load = nodes["only_load"]
    assert only_load.state is NodeState.SUCCEEDED, only_load.error
    assert list(only_load.outputs["robot"]["tasks"]) == ["Load invoices"]

    by_pattern = nodes["by_pattern"]
    assert by_pattern.state is NodeState.FAILED
    assert list(last_outputs(by_pattern)["robot"]["tasks"]) == [
        "Reconcile invoices"]
    assert by_pattern.error == ('task "Reconcile invoices" failed: '
                                "Invoice total mismatch: 120 != 100")

    no_match = nodes["no_match"]
    assert no_match.state is NodeState.FAILED
    assert no_match.error == (
        "robot could not run (invalid robot data or options, exit code 252):\n"
        "Suite 'Reconcile' contains no tasks matching name 'No such task'.")


TYPED = """
id: typed
namespace: tests.rpa
inputs:
  count: {type: integer, required: true}
  regions: {type: array, required: true}
  greeting: {type: string, required: true}
nodes:
  typed:
    uses: rpa
    with:
      robot: ROBOTS/typed_variables.robot
      variables:
        count: "{{ inputs.count }}"
        regions: "{{ inputs.regions }}"
        greeting: "{{ inputs.greeting }}"
        settings: {batch: "{{ inputs.count }}"}
"""


def test_variables_from_inputs_reach_the_robot_with_their_types(engine: EmbeddedDispatcher,
                                                                tmp_path: Path) -> None:
    greeting = """it's "quoted", ${NOT_A_VARIABLE} and %{HOME} stay as typed"""
    detail = run_flow(engine, TYPED, {"count": 21, "regions": ["EU", "US West"],
                                      "greeting": greeting}, directory=tmp_path)
    typed = nodes_of(detail)["typed"]
    assert typed.state is NodeState.SUCCEEDED, typed.error
    assert typed.outputs["doubled"] == 42
    assert typed.outputs["regions"] == ["EU", "US West"]
    assert typed.outputs["region_count"] == 2
    assert typed.outputs["greeting"] == greeting


BROKEN = """
id: broken
namespace: tests.rpa
nodes:
  broken: {uses: rpa, with: {robot: ROBOTS/syntax_error.robot}}
  missing: {uses: rpa, with: {robot: ROBOTS/no_such_robot.robot}}
"""


def test_syntax_errors_and_missing_files_fail_before_anything_runs(engine: EmbeddedDispatcher,
                                                                   tmp_path: Path) -> None:
    nodes = nodes_of(run_flow(engine, BROKEN, directory=tmp_path))
    source = ROBOTS / "syntax_error.robot"

    broken = nodes["broken"]
    assert broken.state is NodeState.FAILED
    assert broken.error == (
        f"robot {source} has 3 syntax errors; nothing was run:\n"
        f"{source}:3: Non-existing setting 'Timeout Setting'.\n"
        f"{source}:8: FOR loop must have closing END.\n"
        f"{source}:11: Unrecognized section header '*** Unknown Section ***'. Valid sections: "
        "'Settings', 'Variables', 'Test Cases', 'Tasks', 'Keywords' and 'Comments'.")

    missing = nodes["missing"]
    assert missing.state is NodeState.FAILED
    assert missing.error is not None
    assert missing.error.startswith(f"robot {ROBOTS}/no_such_robot.robot: no such file or "
                                    f"directory (looked for {ROBOTS}/no_such_robot.robot")

    for node in (broken, missing):  # rejected at submit: no attempt directory, no process
        attempt = node.attempts[-1]
        assert attempt.remote_status == "rejected"
        assert not (settings().attempts_dir / dir_name_for(attempt.key)).exists()


TIMEOUT = """
id: slow
namespace: tests.rpa
nodes:
  slow: {uses: rpa, with: {robot: ROBOTS/sleeper.robot}, timeout: 1s}
"""


def test_a_robot_slower_than_its_timeout_times_out(engine: EmbeddedDispatcher,
                                                   tmp_path: Path) -> None:
    started = time.monotonic()
    slow = nodes_of(run_flow(engine, TIMEOUT, directory=tmp_path))["slow"]
    assert slow.state is NodeState.TIMED_OUT
    assert time.monotonic() - started < 15  # the robot sleeps 30 s
    child = read_pid_file(AttemptPaths(settings().attempts_dir
                                       / dir_name_for(slow.attempts[-1].key)).child_pid)
    assert child is not None
    deadline = time.monotonic() + 10  # the engine may close the attempt before the runner
    while group_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(child.pid)


# --- the examples, from their flow files ------------------------------------------------

def start_example(dispatcher: EmbeddedDispatcher, name: str,
                  inputs: Mapping[str, object]) -> str:
    path = EXAMPLES / name / "flow.yaml"
    flow, _ = ops.register(path.read_text(), file=str(path))
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs=dict(inputs),
                         dispatcher=dispatcher)


def test_invoice_reconciliation_example(engine: EmbeddedDispatcher,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the flow names its robot relative to the repository
    lenient = start_example(engine, "invoice_reconciliation", {})
    strict = start_example(engine, "invoice_reconciliation", {"strict": True})

    nodes = nodes_of(wait_run(lenient))
    reconcile = nodes["reconcile"]
    assert reconcile.state is NodeState.SUCCEEDED, reconcile.error
    assert reconcile.outputs["matched"] == 4
    assert reconcile.outputs["mismatches"] == ["INV-1003: 120.00 != 100.00"]
    assert reconcile.outputs["invoiced_total"] == 1957.15
    report = Path(str(reconcile.outputs["report"]))
    assert report.read_text() == ("Invoices matched: 4\nMismatches: 1\n"
                                  "- INV-1003: 120.00 != 100.00\n")
    assert nodes["announce"].outputs["message"] == "4 invoices matched the ledger"

    failed = nodes_of(wait_run(strict))
    assert failed["reconcile"].state is NodeState.FAILED
    assert failed["reconcile"].error == ('task "Reconcile invoices" failed: Invoice total '
                                         "mismatch: INV-1003: 120.00 != 100.00")
    assert failed["announce"].state is NodeState.SKIPPED


def test_onboarding_forms_example(engine: EmbeddedDispatcher,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    employee = {"employee_name": "Ada Lovelace", "department": "Engineering",
                "start_date": "2026-03-02"}
    good = start_example(engine, "onboarding_forms", employee)
    bad_date = start_example(engine, "onboarding_forms", {**employee, "start_date": "02/03/2026"})

    nodes = nodes_of(wait_run(good))
    forms = nodes["fill_forms"]
    assert forms.state is NodeState.SUCCEEDED, forms.error
    assert forms.outputs["employee_id"] == "EMP-20260302-AL"
    assert forms.outputs["equipment_count"] == 2  # the flow's default: [laptop, badge]
    hr_form, it_request = (Path(p) for p in forms.outputs["forms"])
    assert json.loads(hr_form.read_text()) == {
        "employee_id": "EMP-20260302-AL", "name": "Ada Lovelace",
        "department": "Engineering", "start_date": "2026-03-02"}
    assert "Equipment: laptop, badge" in it_request.read_text()
    screenshots = forms.outputs["artifacts"]["screenshots"]
    assert screenshots == [forms.outputs["screenshot"]]
    assert Path(screenshots[0]).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert nodes["notify"].outputs["message"] == "Ada Lovelace is onboarded as EMP-20260302-AL"

    failed = nodes_of(wait_run(bad_date))["fill_forms"]
    assert failed.state is NodeState.FAILED
    assert failed.error == (
        'tasks "Fill in HR form", "Request IT access", "Capture form screenshot" failed: '
        "Parent suite setup failed:\nInvalid start date '02/03/2026': expected YYYY-MM-DD")
    output_dir = Path(last_outputs(failed)["artifacts"]["output_dir"])
    assert output_dir.is_dir() and not (output_dir / "forms").exists()  # nothing filed


# --- the adapter on its own -------------------------------------------------------------

def test_a_second_submit_with_the_same_key_adopts_the_first_robot(adapter: RpaAdapter) -> None:
    params: dict[str, object] = {"robot": str(ROBOTS / "passing.robot")}
    first = adapter.submit(job(params), key="run-rpa.robot.1")
    second = adapter.submit(job(params), key="run-rpa.robot.1")
    assert isinstance(first, Handle) and first == second
    obs = wait_finished(adapter, first)
    assert obs.state is NodeState.SUCCEEDED
    log = AttemptPaths(Path(first.data["dir"])).log.read_text()
    assert log.count("Output:  ") == 1  # robot ran once
    assert "Count invoices" in adapter.logs(first).text


def test_a_timed_out_robot_keeps_its_partial_results(adapter: RpaAdapter) -> None:
    handle = adapter.submit(job({"robot": str(ROBOTS / "sleeper.robot")}, timeout_s=3),
                            key="run-rpa.slow.1")
    assert isinstance(handle, Handle)
    obs = wait_finished(adapter, handle)
    assert obs.state is NodeState.TIMED_OUT
    assert obs.error == "timed out after 3s"
    task = obs.outputs["robot"]["tasks"]["Wait for the portal"]
    assert (task["status"], task["message"]) == ("FAIL", "Execution terminated by signal")
    assert Path(obs.outputs["artifacts"]["log_html"]).is_file()


def test_rejects_bad_params_before_running(adapter: RpaAdapter, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="write `NAME`, not `\\$\\{NAME\\}`"):
        RpaParams.model_validate({"robot": "x.robot", "variables": {"${X}": 1}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        RpaParams.model_validate({"robot": "x.robot", "task": ["A"]})
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Rejected, match="has no .robot files"):
        adapter.submit(job({"robot": str(empty), "cwd": str(tmp_path)}), key="run-rpa.empty.1")
    with pytest.raises(Rejected, match="variable file nope.yaml: no such file"):
        adapter.submit(job({"robot": str(ROBOTS / "passing.robot"),
                            "variable_files": ["nope.yaml"]}), key="run-rpa.vars.1")


# --- output.xml, parsed from real runs --------------------------------------------------

@pytest.fixture(scope="module")
def reconcile_xml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_robot(ROBOTS / "reconcile.robot", tmp_path_factory.mktemp("reconcile"))


def test_results_of_a_failed_run(reconcile_xml: Path) -> None:
    results = read_results(reconcile_xml)
    assert results.status == "FAIL"
    assert [(t.name, t.status, t.message) for t in results.tasks] == [
        ("Load invoices", "PASS", ""),
        ("Reconcile invoices", "FAIL", "Invoice total mismatch: 120 != 100")]
    assert all(t.elapsed_s >= 0 for t in results.tasks)
    assert results.describe() == "FAIL: 2 tasks, 1 passed, 1 failed, 0 skipped"
    assert results.failure_text() == ('task "Reconcile invoices" failed: '
                                      "Invoice total mismatch: 120 != 100")
    summary = results.summary()
    assert (summary["passed"], summary["failed"], summary["skipped"]) == (1, 1, 0)


def test_results_group_tasks_failing_alike_and_quote_robot_errors(tmp_path: Path) -> None:
    robot = EXAMPLES / "onboarding_forms" / "onboard.robot"
    results = read_results(run_robot(robot, tmp_path, "--variable", "start_date:soon",
                                     "--variable", "department:Sales",
                                     "--variable", "employee_name:Bo"))
    assert results.failure_text() == (
        'tasks "Fill in HR form", "Request IT access", "Capture form screenshot" failed: '
        "Parent suite setup failed:\nInvalid start date 'soon': expected YYYY-MM-DD")
    broken_import = tmp_path / "import.robot"
    broken_import.write_text("*** Settings ***\nLibrary    NoSuchLibrary\n\n"
                             "*** Tasks ***\nUse it\n    No Such Keyword\n")
    results = read_results(run_robot(broken_import, tmp_path / "import"))
    text = results.failure_text()
    assert text.startswith("task \"Use it\" failed: No keyword with name 'No Such Keyword' "
                           "found.\nrobot error: Error in file ")
    assert "Importing library 'NoSuchLibrary' failed" in text


def test_results_refuse_missing_and_truncated_files(reconcile_xml: Path, tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="was not written"):
        read_results(tmp_path / "output.xml")
    truncated = tmp_path / "truncated.xml"
    data = reconcile_xml.read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(ResultsError, match="cannot read"):
        read_results(truncated)
    assert isinstance(read_results(reconcile_xml), RobotResults)


# --- syntax checks and the outputs library ----------------------------------------------

def test_syntax_check_covers_a_directory_of_robots(tmp_path: Path) -> None:
    (tmp_path / "ok.robot").write_text((ROBOTS / "passing.robot").read_text())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.robot").write_text(
        "*** Tasks ***\nT\n    IF    True\n        Log    x\n")
    (tmp_path / "_skipped.robot").write_text("*** Nonsense ***\n")  # Robot skips it too
    with pytest.raises(Rejected) as caught:
        check_syntax(tmp_path)
    assert str(caught.value) == (f"robot {tmp_path} has 1 syntax error; nothing was run:\n"
                                 f"{tmp_path}/sub/bad.robot:3: IF must have closing END.")
    check_syntax(ROBOTS / "passing.robot")  # no error: returns


def test_outputs_library_merges_typed_values(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "outputs"
    target.write_text("")  # the runner creates it empty
    monkeypatch.setenv("INTERLOCK_OUTPUT", str(target))
    library = Outputs()
    library.set_interlock_output("count", 3)
    library.set_interlock_outputs(items=["a", "b"], count=4)
    assert json.loads(target.read_text()) == {"count": 4, "items": ["a", "b"]}
    with pytest.raises(ValueError, match="reserved"):
        library.set_interlock_output("robot", 1)
    with pytest.raises(ValueError, match="cannot be stored as JSON"):
        library.set_interlock_output("when", object())
    monkeypatch.delenv("INTERLOCK_OUTPUT")
    library.set_interlock_output("ignored", 1)  # outside Interlock: only logged
    assert json.loads(target.read_text()) == {"count": 4, "items": ["a", "b"]}
