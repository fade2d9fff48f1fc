"""`uses: script` against real subprocesses: no mocks, every process cleaned up by pid."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from interlock_script.adapter import ScriptAdapter
from interlock_script.layout import AttemptPaths
from interlock_script.outputs import OutputsError, parse_outputs
from interlock_script.params import ScriptParams
from interlock_script.procs import group_alive, pid_alive, read_pid_file, signal_group
from pydantic import ValidationError

import interlock.config.env
from interlock.adapters.contract import Handle, JobSpec
from interlock.errors import Rejected
from interlock.states import NodeState
from tests.helpers import wait_finished

RUN_ID = "run-test"
NODE_ID = "validate"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
PY = sys.executable


# --- fixtures and helpers ---------------------------------------------------------------

@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("INTERLOCK_HOME", str(home))
    # `cwd` must be inside a work root: the worker's directory and this test's folder.
    monkeypatch.setenv("INTERLOCK_WORK_ROOTS", f"{Path.cwd()}{os.pathsep}{tmp_path}")
    interlock.config.env.settings.cache_clear()
    yield home
    interlock.config.env.settings.cache_clear()
    _kill_leftovers(home / "attempts")


@pytest.fixture
def adapter(home: Path) -> ScriptAdapter:
    return ScriptAdapter()


@pytest.fixture
def stray_pids() -> Iterator[list[int]]:
    """Pids a test saw (grandchildren); killed at teardown if still alive."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _kill_leftovers(attempts: Path) -> None:
    if not attempts.is_dir():
        return
    for attempt in attempts.iterdir():
        paths = AttemptPaths(attempt)
        runner = read_pid_file(paths.runner_pid)
        if runner is not None and runner.alive():
            os.kill(runner.pid, signal.SIGKILL)
        child = read_pid_file(paths.child_pid)
        if child is not None and group_alive(child.pid):
            signal_group(child.pid, signal.SIGKILL)


def job(params: dict[str, object], *, timeout_s: float | None = None) -> JobSpec:
    return JobSpec(run_id=RUN_ID, node_id=NODE_ID, attempt=1, params=params,
                   traceparent=TRACEPARENT, timeout_s=timeout_s)


def submit(adapter: ScriptAdapter, params: dict[str, object], *, key: str = "run-test.validate.1",
           timeout_s: float | None = None) -> Handle:
    handle = adapter.submit(job(params, timeout_s=timeout_s), key=key)
    assert isinstance(handle, Handle), handle
    return handle


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


def attempt_paths(handle: Handle) -> AttemptPaths:
    return AttemptPaths(Path(handle.data["dir"]))


def read_all_logs(adapter: ScriptAdapter, handle: Handle) -> tuple[str, list[str], bool]:
    """Page through the whole log: (text, the chunks, whether any chunk said truncated)."""
    chunks: list[str] = []
    cursor: str | None = "0"
    truncated = False
    while cursor is not None:
        chunk = adapter.logs(handle, cursor=cursor)
        chunks.append(chunk.text)
        truncated = truncated or chunk.truncated
        cursor = chunk.cursor
    return "".join(chunks), chunks, truncated


def background_sleeper(pidfile: Path) -> str:
    """A shell command whose grandchild (`sleep 60 &`) records its pid."""
    return f"sleep 60 & echo $! > '{pidfile}'; sleep 60"


def read_pid(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip() != "")
    return int(path.read_text())


# --- outcomes and outputs ---------------------------------------------------------------

def test_success_with_key_value_outputs(adapter: ScriptAdapter) -> None:
    command = ("echo hello from the script; "
               "printf 'count=3\\n# a comment\\n\\nquery=a=b\\n' >> \"$INTERLOCK_OUTPUT\"")
    handle = submit(adapter, {"command": command})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.SUCCEEDED
    assert obs.remote_status == "exited 0"
    assert obs.outputs == {"count": 3, "query": "a=b"}  # JSON scalars are typed
    assert obs.log_excerpt is not None and "hello from the script" in obs.log_excerpt
    assert handle.kind == "script" and handle.external_id == "run-test.validate.1"


def test_json_outputs_from_an_inline_python_script(adapter: ScriptAdapter) -> None:
    body = textwrap.dedent("""
        import json, os
        with open(os.environ["INTERLOCK_OUTPUT"], "w") as f:
            json.dump({"rows": 12, "tables": ["a", "b"], "ok": True}, f)
    """)
    handle = submit(adapter, {"script": body, "interpreter": PY})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.SUCCEEDED
    assert obs.outputs == {"rows": 12, "tables": ["a", "b"], "ok": True}


def test_multiline_outputs(adapter: ScriptAdapter) -> None:
    body = textwrap.dedent("""\
        cat >> "$INTERLOCK_OUTPUT" <<'OUT'
        report<<END_OF_REPORT
        line one
        line two = still the body
        END_OF_REPORT
        status=ok
        OUT
    """)
    handle = submit(adapter, {"script": body})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.SUCCEEDED, obs.error
    assert obs.outputs == {"report": "line one\nline two = still the body", "status": "ok"}


def test_malformed_outputs_fail_naming_the_line(adapter: ScriptAdapter) -> None:
    command = "printf 'good=1\\nthis line has no equals sign\\n' >> \"$INTERLOCK_OUTPUT\""
    handle = submit(adapter, {"command": command})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.FAILED
    assert obs.error is not None
    assert "line 2" in obs.error and "name=value" in obs.error
    assert obs.outputs == {}


def test_nonzero_exit_fails_with_the_exit_code(adapter: ScriptAdapter) -> None:
    handle = submit(adapter, {"command": "echo boom >&2; exit 3"})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.FAILED
    assert obs.error == "exit code 3"
    assert obs.remote_status == "exited 3"
    assert obs.log_excerpt is not None and "boom" in obs.log_excerpt  # stderr is kept too


def test_a_command_that_cannot_be_executed_fails(adapter: ScriptAdapter, tmp_path: Path) -> None:
    junk = tmp_path / "not-a-program"
    junk.write_bytes(b"\x00\x01\x02")
    junk.chmod(0o755)
    handle = submit(adapter, {"command": [str(junk)]})

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.FAILED
    assert obs.remote_status == "failed to start"
    assert obs.error is not None and "cannot start" in obs.error and str(junk) in obs.error


def test_outputs_parser_reports_unclosed_heredoc_and_bad_json() -> None:
    with pytest.raises(OutputsError, match=r"line 2: `body<<EOF` is never closed"):
        parse_outputs("a=1\nbody<<EOF\nno end\n")
    with pytest.raises(OutputsError, match=r"line 3: invalid JSON"):
        parse_outputs('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(OutputsError, match=r"line 1: invalid output name '1abc'"):
        parse_outputs("1abc=2")
    assert parse_outputs("") == {}


def test_key_value_outputs_are_typed_only_when_they_spell_a_json_scalar() -> None:
    text = ("count=3\nneg=-2\nratio=0.5\nbig=1e6\nok=true\nno=false\nnothing=null\n"
            "zip=007\npadded= 3\nnan=NaN\nhuge=1e999\nid=12345678901234567890123\n"
            "word=True\nbody<<EOF\n42\nEOF\n")
    assert parse_outputs(text) == {
        "count": 3, "neg": -2, "ratio": 0.5, "big": 1e6, "ok": True, "no": False,
        "nothing": None, "zip": "007", "padded": " 3", "nan": "NaN", "huge": "1e999",
        "id": "12345678901234567890123", "word": "True", "body": "42"}
    assert parse_outputs("n=" + "9" * 5000) == {"n": "9" * 5000}  # no int() of 5000 digits
    assert parse_outputs('{"count": "3"}') == {"count": "3"}  # a JSON object keeps its types


# --- environment ------------------------------------------------------------------------

DUMP_ENV = [PY, "-c",
            "import json, os; json.dump(dict(os.environ), open(os.environ['INTERLOCK_OUTPUT'], 'w'))"]


def test_environment_is_an_allow_list(adapter: ScriptAdapter,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    handle = submit(adapter, {"command": DUMP_ENV, "env": {"CUSTOMER": "42"}})

    env = wait_finished(adapter, handle).outputs

    assert env["INTERLOCK_RUN_ID"] == RUN_ID
    assert env["INTERLOCK_NODE_ID"] == NODE_ID
    assert env["INTERLOCK_ATTEMPT"] == "1"
    assert env["TRACEPARENT"] == TRACEPARENT
    assert env["CUSTOMER"] == "42"
    assert env["INTERLOCK_OUTPUT"] == str(attempt_paths(handle).outputs)
    assert env["PATH"] == os.environ["PATH"]
    assert "SECRET_TOKEN" not in env
    assert "INTERLOCK_HOME" not in env


def test_inherit_env_passes_named_variables(adapter: ScriptAdapter,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cret")
    handle = submit(adapter, {"command": DUMP_ENV, "inherit_env": ["SECRET_TOKEN"]})

    env = wait_finished(adapter, handle).outputs

    assert env["SECRET_TOKEN"] == "s3cret"


# --- timeouts, cancels, lost runners ----------------------------------------------------

def test_timeout_kills_the_whole_process_group(adapter: ScriptAdapter, tmp_path: Path,
                                               stray_pids: list[int]) -> None:
    pidfile = tmp_path / "grandchild.pid"
    started = time.monotonic()
    handle = submit(adapter, {"command": background_sleeper(pidfile)}, timeout_s=1)
    grandchild = read_pid(pidfile)
    stray_pids.append(grandchild)

    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.TIMED_OUT
    assert obs.error == "timed out after 1s"
    assert time.monotonic() - started < 5  # SIGTERM sufficed; no wait for the SIGKILL grace
    assert not pid_alive(grandchild)
    child = read_pid_file(attempt_paths(handle).child_pid)
    assert child is not None and not group_alive(child.pid)


def test_cancel_stops_the_child_group(adapter: ScriptAdapter, tmp_path: Path,
                                      stray_pids: list[int]) -> None:
    pidfile = tmp_path / "grandchild.pid"
    handle = submit(adapter, {"command": background_sleeper(pidfile)})
    grandchild = read_pid(pidfile)
    stray_pids.append(grandchild)
    assert adapter.poll([handle])[0].state is NodeState.RUNNING

    adapter.cancel(handle)
    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.CANCELLED
    assert not pid_alive(grandchild)
    child = read_pid_file(attempt_paths(handle).child_pid)
    assert child is not None and not group_alive(child.pid)
    adapter.cancel(handle)  # cancelling a finished attempt is a no-op
    assert adapter.poll([handle])[0].state is NodeState.CANCELLED


def test_a_killed_runner_is_lost(adapter: ScriptAdapter) -> None:
    handle = submit(adapter, {"command": "sleep 60"})
    paths = attempt_paths(handle)
    wait_for(paths.child_pid.exists)
    runner, child = read_pid_file(paths.runner_pid), read_pid_file(paths.child_pid)
    assert runner is not None and child is not None

    os.kill(runner.pid, signal.SIGKILL)
    signal_group(child.pid, signal.SIGKILL)
    obs = wait_finished(adapter, handle)

    assert obs.state is NodeState.LOST
    assert obs.error is not None
    assert f"runner process {runner.pid} exited without a result" in obs.error


def test_cancel_after_the_runner_died_records_cancelled(adapter: ScriptAdapter) -> None:
    handle = submit(adapter, {"command": "sleep 60"})
    paths = attempt_paths(handle)
    wait_for(paths.child_pid.exists)
    runner, child = read_pid_file(paths.runner_pid), read_pid_file(paths.child_pid)
    assert runner is not None and child is not None
    os.kill(runner.pid, signal.SIGKILL)
    wait_for(lambda: not runner.alive())

    adapter.cancel(handle)  # kills the orphaned group itself

    assert adapter.poll([handle])[0].state is NodeState.CANCELLED
    wait_for(lambda: not group_alive(child.pid))


def test_a_runner_that_never_started_is_lost(adapter: ScriptAdapter, home: Path) -> None:
    # What a worker killed between writing the marker and spawning leaves behind.
    paths = AttemptPaths(home / "attempts" / "crashed.validate.1")
    paths.dir.mkdir(parents=True)
    paths.spawned.write_text("then the worker died\n")
    handle = Handle(kind="script", external_id="crashed.validate.1",
                    data={"dir": str(paths.dir), "host": socket.gethostname()})
    assert adapter.poll([handle])[0].state is NodeState.RUNNING  # may still be starting

    long_ago = time.time() - 60
    os.utime(paths.spawned, (long_ago, long_ago))
    (obs,) = adapter.poll([handle])

    assert obs.state is NodeState.LOST
    assert obs.error is not None and "runner never started" in obs.error
    assert adapter.logs(handle).cursor is None  # nothing more will ever come


def test_another_hosts_attempt_is_never_called_lost(adapter: ScriptAdapter) -> None:
    handle = submit(adapter, {"command": "sleep 60"})
    wait_for(attempt_paths(handle).child_pid.exists)
    foreign = Handle(kind="script", external_id=handle.external_id,
                     data={**handle.data, "host": "some-other-host"})

    (obs,) = adapter.poll([foreign])
    assert obs.state is NodeState.RUNNING and obs.remote_status == "running on some-other-host"

    adapter.cancel(foreign)  # no pid to signal from here: the runner sees the cancel marker

    assert wait_finished(adapter, handle).state is NodeState.CANCELLED
    assert adapter.poll([foreign])[0].state is NodeState.CANCELLED


# --- exactly once -----------------------------------------------------------------------

def test_submitting_the_same_key_again_runs_the_command_once(adapter: ScriptAdapter,
                                                             tmp_path: Path) -> None:
    ran = tmp_path / "ran.txt"
    params: dict[str, object] = {"command": f"echo ran >> '{ran}'; sleep 0.3"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        handles = list(pool.map(lambda _: submit(adapter, params), range(4)))

    obs = wait_finished(adapter, handles[0])
    again = submit(adapter, params)  # after it finished: adopted, not re-run

    assert obs.state is NodeState.SUCCEEDED
    assert {h.data["dir"] for h in [*handles, again]} == {handles[0].data["dir"]}
    assert ran.read_text() == "ran\n"


def test_the_runner_survives_the_death_of_the_submitting_process(home: Path,
                                                                 tmp_path: Path) -> None:
    ran = tmp_path / "ran.txt"
    command = f"sleep 1; echo ran >> '{ran}'"
    submitter = textwrap.dedent(f"""
        import json, sys, time
        from interlock.adapters.contract import JobSpec
        from interlock_script.adapter import ScriptAdapter
        job = JobSpec({RUN_ID!r}, {NODE_ID!r}, 1, {{"command": {command!r}}}, {TRACEPARENT!r})
        handle = ScriptAdapter().submit(job, key="orphaned.validate.1")
        print(json.dumps(handle.data), flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([PY, "-c", submitter], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        data = json.loads(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert not ran.exists()  # the command was still sleeping when its submitter died

    handle = Handle(kind="script", external_id="orphaned.validate.1", data=data)
    obs = wait_finished(ScriptAdapter(), handle)

    assert obs.state is NodeState.SUCCEEDED
    assert ran.read_text() == "ran\n"


# --- logs -------------------------------------------------------------------------------

def test_logs_page_with_a_cursor(adapter: ScriptAdapter) -> None:
    line = "é" * 49 + "\n"  # two-byte characters: a chunk boundary may fall inside one
    count = 2000            # 198,000 bytes: four 64 KiB chunks
    program = f"import sys; sys.stdout.write({line!r} * {count})"
    handle = submit(adapter, {"command": [PY, "-c", program]})
    wait_finished(adapter, handle)

    text, chunks, truncated = read_all_logs(adapter, handle)

    assert text == line * count
    assert len(chunks) >= 4
    assert all(len(c.encode()) <= 64 * 1024 for c in chunks)
    assert "\ufffd" not in text
    assert not truncated
    first = adapter.logs(handle)
    assert first.cursor is not None
    second = adapter.logs(handle, cursor=first.cursor)
    assert second.cursor == str(int(first.cursor) + len(second.text.encode()))
    with pytest.raises(Rejected, match="bad log cursor"):
        adapter.logs(handle, cursor="abc")


def test_log_is_capped_keeping_head_and_tail(adapter: ScriptAdapter) -> None:
    program = "print('HEAD-MARK'); print('x' * 5000); print('TAIL-MARK')"
    handle = submit(adapter, {"command": [PY, "-c", program], "log_max_bytes": 1000})

    obs = wait_finished(adapter, handle)
    text, _, truncated = read_all_logs(adapter, handle)

    total = len("HEAD-MARK\n") + 5001 + len("TAIL-MARK\n")
    marker = f"... [{total - 1000} bytes truncated] ...\n"
    assert obs.state is NodeState.SUCCEEDED
    assert truncated
    assert text.startswith("HEAD-MARK\n")
    assert text.endswith("TAIL-MARK\n")
    assert marker in text
    assert len(text.encode()) == 1000 + len(marker) + 1  # + the newline closing the head


def test_logs_of_a_running_script_keep_the_cursor(adapter: ScriptAdapter, tmp_path: Path) -> None:
    go = tmp_path / "go"
    handle = submit(adapter, {"command": f"echo first; while [ ! -e '{go}' ]; do sleep 0.05; done"})
    wait_for(lambda: attempt_paths(handle).log.exists()
             and attempt_paths(handle).log.read_text() == "first\n")

    chunk = adapter.logs(handle)

    assert chunk.text == "first\n"
    assert chunk.cursor == "6"  # running: more may come, so there is a cursor
    go.touch()
    wait_finished(adapter, handle)
    assert adapter.logs(handle, cursor=chunk.cursor).cursor is None


# --- refusals and health ----------------------------------------------------------------

@pytest.mark.parametrize("params", [{"command": "true", "script": "true"}, {}])
def test_exactly_one_of_command_or_script(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="give exactly one of `command` or `script`"):
        ScriptParams.model_validate(params)


def test_other_bad_params_are_named() -> None:
    with pytest.raises(ValidationError, match="interpreter` only applies to `script`"):
        ScriptParams.model_validate({"command": "true", "interpreter": "bash"})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        ScriptParams.model_validate({"command": "true", "timeout": 5})
    with pytest.raises(ValidationError, match="`command` is empty"):
        ScriptParams.model_validate({"command": []})


def test_submit_rejects_bad_params(adapter: ScriptAdapter) -> None:
    with pytest.raises(Rejected, match="exactly one of"):
        adapter.submit(job({}), key="bad.params.1")


def test_missing_cwd_is_rejected(adapter: ScriptAdapter, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(Rejected, match=f"cwd {missing} does not exist"):
        adapter.submit(job({"command": "true", "cwd": str(missing)}), key="bad.cwd.1")

    # Nothing was marked as spawned: the same key may be submitted again once fixed.
    missing.mkdir()
    handle = submit(adapter, {"command": "pwd", "cwd": str(missing)}, key="bad.cwd.1")
    obs = wait_finished(adapter, handle)
    assert obs.state is NodeState.SUCCEEDED
    assert obs.log_excerpt == f"{missing}\n"


def test_missing_program_is_rejected(adapter: ScriptAdapter, tmp_path: Path) -> None:
    with pytest.raises(Rejected, match=r"scripts/check\.sh: no such file"):
        adapter.submit(job({"command": ["scripts/check.sh"], "cwd": str(tmp_path)}), key="bad.1")
    with pytest.raises(Rejected, match="no-such-interpreter: not found on PATH"):
        adapter.submit(job({"script": "x", "interpreter": "no-such-interpreter"}), key="bad.2")


def test_unsafe_keys_get_their_own_directories(adapter: ScriptAdapter, home: Path) -> None:
    first = submit(adapter, {"command": "true"}, key="../escape/1")
    second = submit(adapter, {"command": "true"}, key=".._escape_1")

    assert first.data["dir"] != second.data["dir"]
    for handle in (first, second):
        assert Path(handle.data["dir"]).parent == home / "attempts"
        assert wait_finished(adapter, handle).state is NodeState.SUCCEEDED


def test_entry_point_exports_the_adapter() -> None:
    import interlock_script
    if getattr(interlock_script, "__file__", None) is None:
        pytest.skip("interlock_script resolved as a namespace package: the editable install "
                    "predates its __init__.py; re-run `pip install -e .`")
    assert interlock_script.ScriptAdapter is ScriptAdapter
    assert ScriptAdapter.kind == "script"
    assert ScriptAdapter.params_model is ScriptParams
    assert ScriptAdapter.poll_interval == (0.1, 1.0)
