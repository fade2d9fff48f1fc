"""Paths stay inside their roots (issue 13, point 2), on real files and real robots:
`interlock.adapters.paths.inside` and the adapters that use it get what an attacker would
send (`../`, absolute paths, symlinks leading out, NUL, Robot's `vars.py:arg`, a handle
whose `dir` was altered in the store); a control shows the escape works without the check.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest
from interlock_cron.adapter import CronAdapter
from interlock_rpa import RpaAdapter
from interlock_rpa.artifacts import collect
from interlock_rpa.layout import RobotPaths
from interlock_script.adapter import ScriptAdapter
from interlock_script.layout import AttemptPaths
from interlock_script.prepare import resolve_cwd

from interlock.adapters.contract import Handle
from interlock.adapters.paths import inside, is_inside, open_inside, work_roots
from interlock.config.env import load_settings, settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import Rejected
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.states import NodeState, RunState
from tests.helpers import wait_finished, wait_run
from tests.test_rpa import _no_leftovers, job  # noqa: F401  (an autouse fixture: kills runners)

MARKER = "evil_ran"

REPORT_ROBOT = """\
*** Settings ***
Library    interlock_rpa.Outputs

*** Tasks ***
Report region
    Set Interlock Output    region    ${REGION}
"""

# Imported by Robot as a variable file: leaves a marker next to itself when it runs.
EVIL_VARS = f"""\
from pathlib import Path
Path(__file__).with_name("{MARKER}").write_text("ran")
REGION = "evil"
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """tmp/work/robots/{report.robot, vars/eu.py, vars/by_arg.py}, and outside the robot's
    folder tmp/work/evil_vars.py and tmp/outside/secret.txt."""
    robots = tmp_path / "work" / "robots"
    (robots / "vars").mkdir(parents=True)
    (robots / "report.robot").write_text(REPORT_ROBOT)
    (robots / "vars" / "eu.py").write_text('REGION = "eu"\n')
    (robots / "vars" / "by_arg.py").write_text(
        "def get_variables(name):\n    return {'REGION': name}\n")
    (tmp_path / "work" / "evil_vars.py").write_text(EVIL_VARS)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("SECRET")
    return tmp_path


@pytest.fixture
def roots(tree: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The work root is tmp/work (and the worker's directory, for the default `cwd`)."""
    monkeypatch.setenv("INTERLOCK_HOME", str(tree / "home"))
    monkeypatch.setenv("INTERLOCK_WORK_ROOTS", f"{tree / 'work'}{os.pathsep}{Path.cwd()}")
    settings.cache_clear()
    yield tree / "work"
    settings.cache_clear()


# --- the one check ------------------------------------------------------------------------

def test_inside_resolves_legit_paths_and_refuses_every_way_out(tree: Path) -> None:
    root = tree / "work" / "robots"
    assert inside(root, "vars/eu.py", "variable file") == root / "vars" / "eu.py"
    assert inside(root, root / "vars" / ".." / "vars" / "eu.py", "x") == root / "vars" / "eu.py"
    assert inside(root, ".", "x") == root

    with pytest.raises(Rejected) as up:
        inside(root, "../evil_vars.py", "variable file", place="the robot's folder")
    assert str(up.value).startswith(
        f"variable file ../evil_vars.py resolves to {tree}/work/evil_vars.py, outside the "
        "robot's folder; ")
    with pytest.raises(Rejected, match=f"variable file {tree}/outside/secret.txt is outside "
                                       f"{root}; use a path inside it"):
        inside(root, tree / "outside" / "secret.txt", "variable file")
    with pytest.raises(Rejected, match="contains a NUL byte"):
        inside(root, "vars/eu.py\0.txt", "variable file")
    assert inside(root, "vars/../vars/eu.py", "x") == root / "vars" / "eu.py"
    with pytest.raises(Rejected, match="vars/../vars/eu.py has a `..` component; name it "
                                       f"from {root} downward"):
        inside(root, "vars/../vars/eu.py", "variable file", downward=True)
    # A sibling whose name starts like the root is not inside it (no string prefixes).
    (tree / "work" / "robots-evil").mkdir()
    with pytest.raises(Rejected, match="outside"):
        inside(root, "../robots-evil", "cwd")
    with pytest.raises(Rejected, match="no such file or directory"):
        inside(root, "vars/nope.py", "variable file")
    for missing in ("../nope.py", "../../outside/secret.txt"):  # outside: never probed
        with pytest.raises(Rejected, match="outside"):
            inside(root, missing, "variable file")


def test_symlinks_are_followed_before_the_check(tree: Path) -> None:
    root = tree / "work" / "robots"
    (root / "link.py").symlink_to(tree / "work" / "evil_vars.py")
    (root / "out").symlink_to(tree / "outside", target_is_directory=True)
    (root / "eu_link.py").symlink_to(root / "vars" / "eu.py")
    assert (root / "out" / "secret.txt").read_text() == "SECRET"  # the link does lead out

    with pytest.raises(Rejected, match=f"link.py resolves to {tree}/work/evil_vars.py, outside"):
        inside(root, "link.py", "variable file")
    with pytest.raises(Rejected, match=f"resolves to {tree}/outside/secret.txt, outside"):
        inside(root, "out/secret.txt", "log file")
    assert inside(root, "eu_link.py", "variable file") == root / "vars" / "eu.py"
    assert not is_inside(root, root / "out")
    with pytest.raises(Rejected, match="outside"):
        open_inside(root, root / "out" / "secret.txt", "log file")


def test_work_roots_come_from_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings({}).work_roots == ()
    two = load_settings({"INTERLOCK_WORK_ROOTS": f"/srv/a{os.pathsep}{os.pathsep}/srv/b"})
    assert two.work_roots == (Path("/srv/a"), Path("/srv/b"))
    monkeypatch.delenv("INTERLOCK_WORK_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    settings.cache_clear()  # (the other tests' fixtures clear it again before they read it)
    assert work_roots() == (tmp_path.resolve(),)  # by default the worker's directory
    settings.cache_clear()


# --- cwd ----------------------------------------------------------------------------------

def test_cwd_must_be_inside_a_work_root(roots: Path, tree: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_cwd(str(roots / "robots" / "vars")) == roots / "robots" / "vars"
    monkeypatch.chdir(roots)
    assert resolve_cwd(None) == roots                   # the worker's directory
    assert resolve_cwd("robots") == roots / "robots"    # relative: against it
    with pytest.raises(Rejected) as up:
        resolve_cwd("../outside")
    assert str(up.value).startswith(f"cwd ../outside resolves to {tree}/outside, outside the "
                                    f"work roots ({roots}, ")
    assert "INTERLOCK_WORK_ROOTS" in str(up.value)
    with pytest.raises(Rejected, match="cwd /etc is outside the work roots"):
        resolve_cwd("/etc")
    (roots / "escape").symlink_to(tree / "outside", target_is_directory=True)
    with pytest.raises(Rejected, match=f"cwd escape resolves to {tree}/outside, outside"):
        resolve_cwd("escape")
    with pytest.raises(Rejected, match="contains a NUL byte"):
        resolve_cwd("robots\0")


def test_a_script_with_a_cwd_outside_never_starts(roots: Path, tree: Path) -> None:
    adapter = ScriptAdapter()
    marker = tree / "outside" / MARKER
    with pytest.raises(Rejected, match="outside the work roots"):
        adapter.submit(job({"command": f"touch {marker}", "cwd": str(tree / "outside")}),
                       key="paths.cwd.1")
    inner = adapter.submit(job({"command": "pwd", "cwd": str(roots / "robots")}),
                           key="paths.cwd.2")
    assert isinstance(inner, Handle)
    assert wait_finished(adapter, inner).log_excerpt == f"{roots / 'robots'}\n"
    assert not marker.exists()


# --- robots and their variable files --------------------------------------------------------

CLIMBS = "has a `..` component; name it from the robot's folder"
LEADS_OUT = "outside the robot's folder"


@pytest.mark.parametrize(("variable_file", "why"), [
    ("../evil_vars.py", CLIMBS), ("../evil_vars.py:arg", CLIMBS), ("../evil_vars.py;a", CLIMBS),
    ("vars/../../evil_vars.py", CLIMBS), ("vars/../eu.py", CLIMBS),
    ("EVIL_ABSOLUTE", LEADS_OUT), ("EVIL_ABSOLUTE:arg", LEADS_OUT), ("link.py", LEADS_OUT),
    ("link.py:arg", LEADS_OUT), ("linked/evil_vars.py;arg", LEADS_OUT),
])
def test_variable_files_outside_the_robots_folder_are_refused(
        roots: Path, variable_file: str, why: str) -> None:
    robots = roots / "robots"
    (robots / "link.py").symlink_to(roots / "evil_vars.py")
    (robots / "linked").symlink_to(roots, target_is_directory=True)
    given = variable_file.replace("EVIL_ABSOLUTE", str(roots / "evil_vars.py"))
    with pytest.raises(Rejected) as refused:
        RpaAdapter().submit(job({"robot": "report.robot", "cwd": str(robots),
                                 "variable_files": [given]}), key="paths.vars.1")
    message = str(refused.value)
    assert message.startswith(f"variable file {given.partition(':')[0].partition(';')[0]} ")
    assert f"{why} {robots} (`cwd`)" in message
    if why == LEADS_OUT:
        assert f" {roots}/evil_vars.py" in message  # where it led, named
    assert not (roots / MARKER).exists()
    assert not (settings().attempts_dir).exists()  # refused before anything was written


def test_the_evil_variable_file_does_run_when_robot_is_given_it(roots: Path) -> None:
    """The control: without the check, Robot imports the file and the marker appears."""
    subprocess.run([sys.executable, "-m", "robot", "--rpa", "--output", "NONE", "--report",
                    "NONE", "--log", "NONE", "--variablefile", str(roots / "evil_vars.py"),
                    str(roots / "robots" / "report.robot")],
                   cwd=roots / "robots", capture_output=True, timeout=60, check=False)
    assert (roots / MARKER).read_text() == "ran"


@pytest.mark.parametrize("robot", ["../robots2/r.robot", "ABSOLUTE", "link.robot", "linked_dir"])
def test_robots_outside_the_robots_folder_are_refused(roots: Path, tree: Path,
                                                      robot: str) -> None:
    robots = roots / "robots"
    (roots / "robots2").mkdir()
    (roots / "robots2" / "r.robot").write_text(REPORT_ROBOT)
    (robots / "link.robot").symlink_to(roots / "robots2" / "r.robot")
    (robots / "linked_dir").mkdir()
    (robots / "linked_dir" / "ok.robot").write_text(REPORT_ROBOT)
    (robots / "linked_dir" / "out.robot").symlink_to(roots / "robots2" / "r.robot")
    given = robot.replace("ABSOLUTE", str(roots / "robots2" / "r.robot"))
    with pytest.raises(Rejected) as refused:
        RpaAdapter().submit(job({"robot": given, "cwd": str(robots)}), key="paths.robot.1")
    message = str(refused.value)
    if robot.startswith(".."):
        assert message.startswith(f"robot {given} has a `..` component; name it from the "
                                  f"robot's folder {robots} (`cwd`) downward")
    else:
        assert f"{roots}/robots2/r.robot" in message
        assert f"outside the robot's folder {robots} (`cwd`)" in message
    assert not (tree / "home" / "attempts").exists()  # refused before anything was written


def test_a_nested_robot_and_variable_files_still_run(roots: Path) -> None:
    robots = roots / "robots"
    adapter = RpaAdapter()
    cases = {"eu": ("report.robot", "vars/eu.py"),
             "apac": (str(robots / "report.robot"), "vars/by_arg.py:apac"),
             "latam": ("report.robot", "./vars/by_arg.py;latam")}
    handles = {region: adapter.submit(job({"robot": robot, "cwd": str(robots),
                                           "variable_files": [variables]}), key=f"ok.{region}")
               for region, (robot, variables) in cases.items()}
    for region, handle in handles.items():
        assert isinstance(handle, Handle)
        obs = wait_finished(adapter, handle, timeout=60)
        assert obs.state is NodeState.SUCCEEDED, obs.error
        assert obs.outputs["region"] == region


# --- the case, through the engine ----------------------------------------------------

REGIONS = """
id: regions
namespace: tests.paths
inputs:
  region: {type: string, required: true}
nodes:
  report:
    uses: rpa
    with:
      robot: report.robot
      cwd: ROBOTS
      variable_files: ["vars/{{ inputs.region }}.py"]
"""


@pytest.fixture
def engine(roots: Path, sqlite_store: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    monkeypatch.setenv("INTERLOCK_WORK_ROOTS", str(roots))  # sqlite_store cleared the cache
    settings.cache_clear()
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def test_an_input_cannot_lead_a_variable_file_out_of_the_robots_folder(
        engine: EmbeddedDispatcher, roots: Path) -> None:
    flow, _ = ops.register(dedent(REGIONS).replace("ROBOTS", str(roots / "robots")))

    def run(region: str) -> tuple[RunState, NodeState, str | None, object]:
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id,
                               inputs={"region": region}, dispatcher=engine)
        detail = wait_run(run_id, timeout=60)
        (node,) = detail.nodes
        return detail.state, node.state, node.error, node.outputs.get("region")

    assert run("eu") == (RunState.SUCCEEDED, NodeState.SUCCEEDED, None, "eu")
    (roots / "robots" / "evil_vars.py").write_text(EVIL_VARS)  # where `vars/..` lands
    for region in ("../evil_vars", "../../evil_vars"):
        state, node_state, error, _ = run(region)
        assert (state, node_state) == (RunState.FAILED, NodeState.FAILED)
        assert error == (f"variable file vars/{region}.py has a `..` component; name it from "
                         f"the robot's folder {roots}/robots (`cwd`) downward")
    assert not (roots / MARKER).exists()  # the evil files were never imported
    assert not (roots / "robots" / MARKER).exists()


# --- handles read back from the store ---------------------------------------------------------

def outside_handle(directory: Path, host: str | None = None) -> Handle:
    return Handle(kind="script", external_id="paths.handle.1",
                  data={"dir": str(directory), "host": host or socket.gethostname()})


def fake_attempt(directory: Path) -> None:
    """An attempt directory that looks finished and successful, with a log to steal."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log").write_text("SECRET log of another place\n")
    (directory / "result.json").write_text('{"exit_code": 0, "signal": null, "timed_out": '
                                           'false, "cancelled": false}')


def test_a_handle_whose_dir_leaves_the_attempts_directory_is_refused(roots: Path,
                                                                     tree: Path) -> None:
    adapter = ScriptAdapter()
    attempts = settings().attempts_dir
    attempts.mkdir(parents=True)
    fake_attempt(tree / "outside" / "attempt")
    (attempts / "linked").symlink_to(tree / "outside" / "attempt", target_is_directory=True)
    for directory in (tree / "outside" / "attempt", attempts / ".." / ".." / "outside" / "attempt",
                      attempts / "linked", attempts, Path("relative/attempt")):
        handle = outside_handle(directory)
        with pytest.raises(Rejected, match="attempt directory .* outside the attempts "
                                           f"directory {attempts.resolve()}|not directly under"):
            adapter.logs(handle)
        with pytest.raises(Rejected, match="INTERLOCK_HOME"):
            adapter.poll([handle])
        with pytest.raises(Rejected):
            adapter.cancel(handle)
    assert not (tree / "outside" / "attempt" / "cancel-requested").exists()
    with pytest.raises(Rejected, match="the handle has no attempt directory"):
        adapter.logs(Handle(kind="script", external_id="x", data={}))


def test_another_hosts_attempt_elsewhere_is_left_running_unread(roots: Path, tree: Path) -> None:
    fake_attempt(tree / "outside" / "attempt")
    (obs,) = ScriptAdapter().poll([outside_handle(tree / "outside" / "attempt", "elsewhere")])
    assert obs.state is NodeState.RUNNING  # read, it would have said SUCCEEDED
    assert obs.remote_status is not None and obs.remote_status.startswith("running on elsewhere")
    assert not obs.log_excerpt


def test_a_log_swapped_for_a_symlink_is_not_read(roots: Path, tree: Path) -> None:
    adapter = ScriptAdapter()
    handle = adapter.submit(job({"command": "echo mine"}), key="paths.log.1")
    assert isinstance(handle, Handle)
    assert wait_finished(adapter, handle).log_excerpt == "mine\n"
    log = AttemptPaths(Path(handle.data["dir"])).log
    log.unlink()
    log.symlink_to(tree / "outside" / "secret.txt")
    with pytest.raises(Rejected, match="log file .* outside") as refused:
        adapter.logs(handle)
    assert "SECRET" not in str(refused.value)
    with pytest.raises(Rejected, match="log file .* outside"):
        adapter.poll([handle])


def test_artifacts_leading_out_of_the_output_dir_are_not_listed(tree: Path) -> None:
    paths = RobotPaths(tree / "attempt")
    paths.output_dir.mkdir(parents=True)
    (paths.output_dir / "form.png").write_bytes(b"\x89PNG")
    (tree / "outside" / "host.png").write_bytes(b"\x89PNG")
    (paths.output_dir / "stolen.png").symlink_to(tree / "outside" / "host.png")
    paths.log_html.symlink_to(tree / "outside" / "secret.txt")
    artifacts = collect(paths)
    assert artifacts["screenshots"] == [str(paths.output_dir / "form.png")]
    assert artifacts["log_html"] is None


# --- cron: the HOME crond would run a job in -------------------------------------------------

CRON_MAPPING = """system: cron/pathhost
jobs:
  away: {{schedule: "@daily", command: pwd, env: {{HOME: "{outside}"}}}}
  home: {{schedule: "@daily", command: pwd, env: {{HOME: "{inside}"}}}}
"""

def test_a_cron_jobs_home_must_be_inside_a_work_root(roots: Path, tree: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / "cron-pathhost.yaml").write_text(
        CRON_MAPPING.format(outside=tree / "outside", inside=roots / "robots"))
    monkeypatch.setenv("INTERLOCK_MAPPINGS", str(tree))
    settings.cache_clear()
    adapter = CronAdapter()
    with pytest.raises(Rejected, match=f"HOME of cron job `away` .* is outside the roots "
                                       f"{roots}, .*INTERLOCK_WORK_ROOTS"):
        adapter.submit(job({"system": "cron/pathhost", "job": "away", "run": "now"}),
                       key="paths.cron.1")
    handle = adapter.submit(job({"system": "cron/pathhost", "job": "home", "run": "now"}),
                            key="paths.cron.2")
    assert isinstance(handle, Handle)
    assert wait_finished(adapter, handle).log_excerpt == f"{roots / 'robots'}\n"
