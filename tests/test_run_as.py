"""Least privilege: script and robot nodes run as the OS user `run_as` names.

Real processes, a real user (`interlock-test-runner`, created by a session fixture with
useradd if missing) and the real kernel's permission checks: the command tries to read
the runner's and the worker's environment and a root-only file, and must fail. Each
check has a control run as root that succeeds, so the assertions can fail.

Needs root (to create the user and switch to it); skipped otherwise. The interpreter of
this machine's virtualenv may live under a directory closed to other users (/root): the
robot test then lets the test user search those directories with a POSIX ACL entry for
that user alone, removed at the end of the session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from interlock_rpa import RpaAdapter
from interlock_script import ScriptAdapter
from interlock_script.identity import ACL_XATTR, Identity, UnknownUser
from interlock_script.layout import AttemptPaths
from interlock_script.procs import group_alive, read_pid_file, signal_group
from interlock_script.records import RunSpec

from interlock.adapters.contract import Handle, JobSpec, Observation
from interlock.config.env import settings
from interlock.config.systems import parse_systems
from interlock.errors import Rejected, SpecError
from interlock.states import NodeState
from tests.conftest import ROOT
from tests.helpers import wait_finished

TEST_USER = "interlock-test-runner"
CANARY_NAME = "INTERLOCK_TEST_RUN_AS_CANARY"
FLOW = "ops.nightly/flow"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
DENIED = "Permission denied"
ROBOTS = ROOT / "tests" / "robots"
ACL_VERSION, ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER = 2, 1, 2, 4, 16, 32
ACL_NO_ID = 0xFFFFFFFF
SEARCH = 1


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def user() -> Identity:
    """The unprivileged test user; created with useradd when this host lacks it."""
    if os.geteuid() != 0:
        pytest.skip("run_as needs a worker started as root (to create the test user and "
                    "to switch to it); these tests run only as root")
    try:
        return Identity.lookup(TEST_USER)
    except UnknownUser:  # another session may create it at the same time: look again
        subprocess.run(["useradd", "--system", "--user-group", "--create-home", "--home-dir",
                        f"/home/{TEST_USER}", "--shell", "/usr/sbin/nologin", TEST_USER],
                       check=False, capture_output=True)
    return Identity.lookup(TEST_USER)


@pytest.fixture
def base(user: Identity, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder the test user can search (pytest's own tmp_path is root's, 0700) holding
    INTERLOCK_HOME and the systems file; the worker defaults to run_as the test user."""
    folder = Path(tempfile.mkdtemp(prefix="interlock-run-as-"))
    folder.chmod(0o711)
    monkeypatch.setenv("INTERLOCK_HOME", str(folder / "home"))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(folder / "systems.yaml"))
    monkeypatch.setenv("INTERLOCK_RUN_AS", user.name)
    settings.cache_clear()
    yield folder
    settings.cache_clear()
    _kill_leftovers(folder / "home" / "attempts")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def root_file(base: Path) -> tuple[Path, str]:
    """A root-owned 0600 file and the distinctive text in it."""
    text = f"root-only-{secrets.token_hex(8)}"
    path = base / "root-only.txt"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path, text


@pytest.fixture(scope="session")
def interpreter_for(user: Identity) -> Iterator[None]:
    """Lets the test user run this virtualenv's Python (for robots), removed at the end."""
    undo = [] if _runs_python(user) else [_grant_search(d, user) for d in _closed_dirs(user)]
    yield
    for restore in undo:
        restore()


def _kill_leftovers(attempts: Path) -> None:
    for attempt in attempts.iterdir() if attempts.is_dir() else ():
        paths = AttemptPaths(attempt)
        runner = read_pid_file(paths.runner_pid)
        if runner is not None and runner.alive():
            os.kill(runner.pid, signal.SIGKILL)
        child = read_pid_file(paths.child_pid)
        if child is not None and group_alive(child.pid):
            signal_group(child.pid, signal.SIGKILL)


def _runs_python(user: Identity) -> bool:
    try:
        done = subprocess.run([sys.executable, "-c", "import robot"], capture_output=True,
                              check=False, cwd="/", **user.popen_kwargs())
    except PermissionError:
        return False
    return done.returncode == 0


def _closed_dirs(user: Identity) -> list[Path]:
    """Directories on the way to the interpreter and its library the user cannot search."""
    found: list[Path] = []
    for target in (Path(sys.executable).resolve().parent, Path(sys.base_prefix).resolve()):
        for directory in (*reversed(target.parents), target):
            if directory not in found and user.blocked_at(directory) == directory:
                found.append(directory)
    return found


def _grant_search(directory: Path, user: Identity) -> object:
    """Add `user:<uid>:--x` to ``directory``'s ACL; return the undo."""
    mode = directory.stat().st_mode & 0o7777
    group = (mode >> 3) & 7
    entries = [(ACL_USER_OBJ, (mode >> 6) & 7, ACL_NO_ID), (ACL_USER, SEARCH, user.uid),
               (ACL_GROUP_OBJ, group, ACL_NO_ID), (ACL_MASK, group | SEARCH, ACL_NO_ID),
               (ACL_OTHER, mode & 7, ACL_NO_ID)]
    acl = struct.pack("<I", ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(directory, ACL_XATTR, acl)

    def restore() -> None:
        os.removexattr(directory, ACL_XATTR)
        os.chmod(directory, mode)  # the mask had replaced the group bits
    return restore


# --- helpers -----------------------------------------------------------------------------

def job(params: dict[str, object], *, flow: str = FLOW) -> JobSpec:
    return JobSpec(run_id="run-as", node_id="node", attempt=1, params=params,
                   traceparent=TRACEPARENT, flow=flow)


def run(adapter: ScriptAdapter, params: dict[str, object], *, key: str = "run-as.node.1",
        flow: str = FLOW) -> tuple[Observation, Handle]:
    handle = adapter.submit(job(params, flow=flow), key=key)
    assert isinstance(handle, Handle), handle
    return wait_finished(adapter, handle), handle


def whole_log(handle: Handle) -> str:
    return (Path(handle.data["dir"]) / "log").read_text(errors="replace")


def spec_of(handle: Handle) -> RunSpec:
    return RunSpec.load(AttemptPaths(Path(handle.data["dir"])).spec)


def snooping_script(root_file: Path) -> str:
    """Reads what it must not: the runner's environment (its parent), the worker's, and a
    root-only file; says so when a read succeeds. Reports who it is as outputs."""
    return "\n".join([
        'echo "uid=$(id -u)" >> "$INTERLOCK_OUTPUT"',
        'echo "home=$HOME" >> "$INTERLOCK_OUTPUT"',
        "cat /proc/$PPID/environ && echo RUNNER-ENV-WAS-READ",
        f"cat /proc/{os.getpid()}/environ && echo WORKER-ENV-WAS-READ",
        f"cat {root_file} && echo ROOT-FILE-WAS-READ",
        "env",
        "exit 0",
    ])


# --- scripts -----------------------------------------------------------------------------

def test_a_script_run_as_the_user_reads_no_secret_of_the_worker(
        base: Path, user: Identity, root_file: tuple[Path, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv(CANARY_NAME, canary)  # the runner inherits the worker's environment
    path, root_text = root_file

    obs, handle = run(ScriptAdapter(), {"script": snooping_script(path)})

    log = whole_log(handle)
    assert obs.state is NodeState.SUCCEEDED, (obs.error, log)
    assert obs.outputs == {"uid": user.uid, "home": user.home}
    assert log.count(DENIED) == 3, log
    assert "WAS-READ" not in log
    assert canary not in log and root_text not in log
    assert canary not in str(obs.outputs)
    assert spec_of(handle).run_as == user.name


def test_the_same_script_as_root_reads_them_all(
        base: Path, root_file: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: with `INTERLOCK_RUN_AS=root` the reads above succeed."""
    canary = f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv(CANARY_NAME, canary)
    monkeypatch.setenv("INTERLOCK_RUN_AS", "root")
    path, root_text = root_file

    obs, handle = run(ScriptAdapter(), {"script": snooping_script(path)})

    log = whole_log(handle)
    assert obs.outputs["uid"] == 0
    assert "RUNNER-ENV-WAS-READ" in log and canary in log
    assert "ROOT-FILE-WAS-READ" in log and root_text in log
    assert spec_of(handle).run_as is None  # root already: nothing to switch


def test_the_user_gets_its_outputs_file_and_nothing_else(base: Path, user: Identity) -> None:
    obs, handle = run(ScriptAdapter(), {"script": "\n".join([
        'attempt=$(dirname "$INTERLOCK_OUTPUT")',
        'cat "$attempt/spec.json" && echo SPEC-WAS-READ',
        'ls "$attempt" && echo ATTEMPT-WAS-LISTED',
        'touch "$attempt/planted" && echo FILE-WAS-PLANTED',
        'echo made=1 >> "$INTERLOCK_OUTPUT"'])})
    attempt = AttemptPaths(Path(handle.data["dir"]))
    log = whole_log(handle)

    assert obs.state is NodeState.SUCCEEDED and obs.outputs == {"made": 1}
    assert log.count(DENIED) == 3 and "WAS-" not in log, log
    assert not (attempt.dir / "planted").exists()
    info = attempt.dir.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, user.gid, 0o710)
    outputs = attempt.outputs.stat()
    assert (outputs.st_uid, outputs.st_mode & 0o777) == (user.uid, 0o600)
    assert attempt.spec.stat().st_uid == 0 and attempt.spec.stat().st_mode & 0o077 == 0
    assert attempt.script.stat().st_uid == user.uid  # what submit wrote for the command


def test_an_unknown_user_is_rejected_by_name(base: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_RUN_AS", "interlock-no-such-user")
    with pytest.raises(Rejected, match=r"run_as user 'interlock-no-such-user' \(from "
                                       r"INTERLOCK_RUN_AS\) does not exist"):
        ScriptAdapter().submit(job({"command": "true"}), key="run-as.unknown.1")


def test_a_root_worker_without_run_as_refuses_to_run_as_root(
        base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_RUN_AS")
    monkeypatch.setenv("INTERLOCK_BROKER_URL", "redis://127.0.0.1:6379/13")  # a service worker
    settings.cache_clear()
    with pytest.raises(Rejected, match="refusing to run this command as root"):
        ScriptAdapter().submit(job({"command": "true"}), key="run-as.root.1")


def test_the_embedded_dispatcher_runs_commands_as_whoever_started_it(
        base: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`interlock run FLOW` on one's own machine: its user is the flow's author."""
    monkeypatch.delenv("INTERLOCK_RUN_AS")
    monkeypatch.delenv("INTERLOCK_BROKER_URL", raising=False)
    settings.cache_clear()
    obs, _ = run(ScriptAdapter(), {"command": 'echo "uid=$(id -u)" >> "$INTERLOCK_OUTPUT"'},
                 key="run-as.embedded.1")
    assert obs.outputs == {"uid": os.getuid()}


def test_a_cwd_the_user_cannot_reach_is_rejected(base: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    private = base / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("INTERLOCK_WORK_ROOTS", str(base))
    with pytest.raises(Rejected, match=f"cannot reach cwd {private}: {private} is closed"):
        ScriptAdapter().submit(job({"command": "true", "cwd": str(private)}),
                               key="run-as.cwd.1")


# --- where run_as comes from -------------------------------------------------------------

def test_system_then_namespace_then_setting(base: Path, user: Identity,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (base / "systems.yaml").write_text(
        "systems:\n"
        f"  script/as-user: {{run_as: {user.name}}}\n"
        "  script/as-root: {run_as: root}\n"
        f"run_as:\n  finance: {user.name}\n")
    monkeypatch.delenv("INTERLOCK_RUN_AS")
    monkeypatch.setenv("INTERLOCK_BROKER_URL", "redis://127.0.0.1:6379/13")  # a service worker
    settings.cache_clear()
    adapter = ScriptAdapter()

    obs, handle = run(adapter, {"command": 'echo "uid=$(id -u)" >> "$INTERLOCK_OUTPUT"',
                                "system": "script/as-user"}, key="run-as.system.1")
    assert obs.outputs == {"uid": user.uid} and spec_of(handle).run_as == user.name
    # A namespace's entry covers the namespaces below it.
    obs, handle = run(adapter, {"command": 'echo "uid=$(id -u)" >> "$INTERLOCK_OUTPUT"'},
                      key="run-as.namespace.1", flow="finance.eu/pay")
    assert obs.outputs == {"uid": user.uid}
    # The node's system wins over its namespace.
    obs, _ = run(adapter, {"command": 'echo "uid=$(id -u)" >> "$INTERLOCK_OUTPUT"',
                           "system": "script/as-root"}, key="run-as.both.1",
                 flow="finance/pay")
    assert obs.outputs == {"uid": 0}
    with pytest.raises(Rejected, match="refusing to run this command as root"):
        adapter.submit(job({"command": "true"}, flow="financial/x"), key="run-as.none.1")
    with pytest.raises(Rejected, match="unknown system 'script/nope'"):
        adapter.submit(job({"command": "true", "system": "script/nope"}), key="run-as.x.1")


def test_bad_run_as_entries_are_located() -> None:
    text = ("systems:\n  script/a: {run_as: 'x y'}\n"
            "run_as:\n  finance: ok-user\n  'bad/ns': someone\n  ops: 'no way'\n")
    with pytest.raises(SpecError) as caught:
        parse_systems(text, "systems.yaml")
    shown = str(caught.value)
    assert "systems.yaml:2:" in shown and "`run_as`" in shown
    assert "systems.yaml:5:" in shown and "'bad/ns' is not a namespace" in shown
    assert "systems.yaml:6:" in shown and "'no way' is not an OS user name" in shown
    systems = parse_systems("systems: {}\nrun_as: {finance: payroll}\n", "s.yaml")
    assert systems.namespace_run_as("finance.eu.north") == ("finance", "payroll")
    assert systems.namespace_run_as("financial") is None


# --- robots ------------------------------------------------------------------------------

def test_a_robot_runs_as_the_user(base: Path, user: Identity, interpreter_for: None) -> None:
    obs, handle = run(RpaAdapter(), {"robot": str(ROBOTS / "passing.robot")},
                      key="run-as.robot.1")

    assert obs.state is NodeState.SUCCEEDED, (obs.error, whole_log(handle))
    assert obs.outputs["invoices"] == 3 and obs.outputs["ok"] is True
    output_dir = Path(obs.outputs["artifacts"]["output_dir"])
    assert output_dir.stat().st_uid == user.uid
    assert (output_dir / "summary.txt").stat().st_uid == user.uid
    assert spec_of(handle).run_as == user.name
