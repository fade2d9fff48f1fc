"""Legacy cron jobs through the real pieces: `interlock cron exec` as a subprocess posting to
the real API (up, down, hanging, refusing), the spool, `after:` on a cron job, and
`uses: cron` nodes (`run: now`, `wait: next`) on the embedded engine."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest
from airflow_flows import push_api, start, wait_node, wait_triggered
from cron_setup import SYSTEM, CronHost, install_host
from harness_process import free_port
from sqlalchemy import select

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.runs import RunFilter
from interlock.store.tables import AuditRecord, ExternalRun
from tests.helpers import wait_run


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         embedded: EmbeddedDispatcher) -> CronHost:
    return install_host(tmp_path, monkeypatch)


@pytest.fixture
def api(host: CronHost, embedded: EmbeddedDispatcher) -> Iterator[int]:
    port = free_port()
    with push_api(port, embedded):
        yield port


def _runs(job: str) -> list[ExternalRun]:
    with session_scope() as session:
        return list(session.scalars(select(ExternalRun).where(
            ExternalRun.system == SYSTEM, ExternalRun.job_id == job)
            .order_by(ExternalRun.id)))


def _wait_runs(job: str, *, finished: int, timeout: float = 10.0) -> list[ExternalRun]:
    deadline = time.monotonic() + timeout
    while True:
        runs = _runs(job)
        if sum(r.ended_at is not None for r in runs) >= finished:
            return runs
        assert time.monotonic() < deadline, f"{job}: {[(r.state, r.ended_at) for r in runs]}"
        time.sleep(0.1)


# --- the wrapper --------------------------------------------------------------------------

def test_exec_reports_the_run_and_changes_nothing_crond_sees(host: CronHost, api: int) -> None:
    done = host.wrap(api, "report", "sh", "-c",
                     "printf 'out1\\n'; printf 'err1\\n' >&2; cat; exit 3", stdin=b"from-cron")
    assert done.returncode == 3
    assert done.stdout == b"out1\nfrom-cron"
    assert done.stderr == b"err1\n"
    assert host.spooled() == []
    (run,) = _wait_runs("report", finished=1)
    assert (run.state, run.remote_status, run.run_type) == ("failed", "exited 3", "cron")
    assert run.details["exit_code"] == 3 and run.details["signal"] is None
    assert "out1" in run.details["output_tail"] and "err1" in run.details["output_tail"]
    assert run.details["duration_s"] >= 0 and run.started_at <= run.ended_at
    with session_scope() as session:
        accepted = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.EVENT_ACCEPTED.value)).all()
    assert [r.after["event"] for r in accepted] == ["start", "finish"]


def test_a_command_killed_by_a_signal_kills_the_wrapper_the_same_way(host: CronHost,
                                                                     api: int) -> None:
    done = host.wrap(api, "report", "sh", "-c", "kill -TERM $$")
    assert done.returncode == -signal.SIGTERM
    (run,) = _wait_runs("report", finished=1)
    assert (run.remote_status, run.details["signal"]) == ("signal 15", 15)


def test_a_missing_command_exits_127_like_a_shell(host: CronHost, api: int) -> None:
    done = host.wrap(api, "report", "/no/such/program")
    assert done.returncode == 127 and b"/no/such/program" in done.stderr
    (run,) = _wait_runs("report", finished=1)
    assert run.remote_status == "exited 127"


def test_with_the_api_down_reports_are_spooled_then_delivered_in_order(
        host: CronHost, embedded: EmbeddedDispatcher) -> None:
    port = free_port()  # nothing listens here yet
    done = host.wrap(port, "report", "sh", "-c", "echo still-runs; exit 0")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"still-runs\n", b"")
    spooled = host.spooled()
    assert [json.loads(p.read_text())["event"] for p in spooled] == ["start", "finish"]
    assert "not delivered" in (host.spool / "delivery.log").read_text()
    assert _runs("report") == []
    with push_api(port, embedded):
        flushed = subprocess.run([sys.executable, "-m", "interlock", "cron", "flush"],
                                 env=host.wrapper_env(port), capture_output=True, timeout=60)
        assert flushed.returncode == 0, flushed.stderr
        assert host.spooled() == []
        (run,) = _wait_runs("report", finished=1)
    assert (run.state, run.details["output_tail"]) == ("succeeded", "still-runs\n")


def test_the_next_wrapped_run_delivers_what_an_earlier_one_spooled(
        host: CronHost, embedded: EmbeddedDispatcher) -> None:
    port = free_port()
    assert host.wrap(port, "report", "true").returncode == 0
    assert len(host.spooled()) == 2
    with push_api(port, embedded):
        assert host.wrap(port, "report", "false").returncode == 1
        runs = _wait_runs("report", finished=2)
    assert host.spooled() == []
    assert [r.remote_status for r in runs] == ["exited 0", "exited 1"]


def test_a_hanging_api_delays_nothing_and_loses_nothing(host: CronHost) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # accepts connections, never answers
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        began = time.monotonic()
        done = host.wrap(port, "report", "sh", "-c", "echo ok", INTERLOCK_CRON_TIMEOUT="1")
        took = time.monotonic() - began
    finally:
        stop.set()
        holder.join()
        for conn in accepted:
            conn.close()
        listener.close()
    assert (done.returncode, done.stdout) == (0, b"ok\n")
    assert len(host.spooled()) == 2
    assert took < 5.0, f"the wrapper took {took:.1f}s with a 1s timeout"


def test_reports_the_api_refuses_are_kept_aside_with_the_reason(host: CronHost,
                                                                api: int) -> None:
    done = host.wrap(api, "report", "true", INTERLOCK_CRON_SECRET="wrong")
    assert done.returncode == 0
    rejected = host.spool / "rejected"
    reasons = sorted(rejected.glob("*.reason"))
    assert len(reasons) == 2 and "401" in reasons[0].read_text()
    assert host.spooled() == [] and _runs("report") == []


# --- after: a cron job --------------------------------------------------------------------

def test_a_cron_job_finishing_starts_a_waiting_flow(host: CronHost, api: int) -> None:
    ops.register(dedent(f"""
        id: after-report
        namespace: tests.cron
        triggers:
          - after: {{system: {SYSTEM}, job: report, state: success}}
        nodes:
          notify: {{uses: noop}}
    """).lstrip())
    assert host.wrap(api, "report", "false").returncode == 1   # failed: does not fire
    assert host.wrap(api, "report", "true").returncode == 0
    ok = next(r for r in _wait_runs("report", finished=2) if r.state == "succeeded")
    run_id = wait_triggered("tests.cron", "after-report", ok.external_id, timeout=10,
                            why="the successful cron run did not start the flow")
    detail = wait_run(run_id)
    assert detail.state.value == "succeeded"
    assert detail.trigger["system"] == SYSTEM and detail.trigger["job_id"] == "report"
    assert len(ops.list_runs(filters=RunFilter(flow_id="after-report")).runs) == 1


# --- uses: cron ---------------------------------------------------------------------------

NODES = """
id: legacy
namespace: tests.cron
nodes:
  job:
    uses: cron
    with: {{system: cron/testhost, job: {job}, {mode}}}
    timeout: 60s
  after: {{uses: noop, needs: [job], with: {{got: "{{{{ nodes.job.outputs }}}}"}}}}
"""


def test_run_now_runs_the_command_as_crond_would(host: CronHost,
                                                 embedded: EmbeddedDispatcher) -> None:
    run_id = start(NODES.format(job="report", mode="run: now"), embedded)
    detail = wait_run(run_id)
    assert detail.state.value == "succeeded"
    logs = ops.node_logs(run_id, "job").text
    assert "hello-world" in logs and "line one\nline two" in logs


def test_run_now_fails_with_the_commands_exit_code(host: CronHost,
                                                   embedded: EmbeddedDispatcher) -> None:
    detail = wait_run(start(NODES.format(job="fail", mode="run: now"), embedded))
    job = next(n for n in detail.nodes if n.id == "job")
    assert job.state.value == "failed" and job.error == "exit code 4"


def test_an_unknown_job_fails_the_node_naming_the_known_ones(
        host: CronHost, embedded: EmbeddedDispatcher) -> None:
    detail = wait_run(start(NODES.format(job="nope", mode="run: now"), embedded))
    job = next(n for n in detail.nodes if n.id == "job")
    assert job.state.value == "failed"
    assert "no job `nope` in cron/testhost" in job.error and "report" in job.error


def test_wait_next_follows_the_next_run_crond_starts(host: CronHost, api: int,
                                                     embedded: EmbeddedDispatcher) -> None:
    assert host.wrap(api, "report", "true").returncode == 0  # before the node: not waited for
    run_id = start(NODES.format(job="report", mode="wait: next"), embedded)
    wait_node(run_id, "job", "running", timeout=10)
    time.sleep(1.0)
    assert ops.get_run(run_id).state.value == "running"
    done = host.wrap(api, "report", "sh", "-c", "echo nightly-batch")
    assert done.returncode == 0
    detail = wait_run(run_id, timeout=30)
    assert detail.state.value == "succeeded"
    job = next(n for n in detail.nodes if n.id == "job")
    waited = _runs("report")[-1]
    assert job.outputs["run"] == waited.external_id and job.outputs["exit_code"] == 0


def test_wait_next_fails_when_the_run_fails(host: CronHost, api: int,
                                            embedded: EmbeddedDispatcher) -> None:
    run_id = start(NODES.format(job="report", mode="wait: next"), embedded)
    wait_node(run_id, "job", "running", timeout=10)
    host.wrap(api, "report", "sh", "-c", "echo disk full >&2; exit 2")
    detail = wait_run(run_id, timeout=30)
    job = next(n for n in detail.nodes if n.id == "job")
    assert job.state.value == "failed" and "exited 2" in job.error
    assert "disk full" in ops.node_logs(run_id, "job").text


# --- interlock import crontab -------------------------------------------------------------

CRONTABS = Path(__file__).parent / "crontabs"


def _interlock(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interlock", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=60, check=False)


def test_import_crontab_reports_skipped_lines_and_writes_a_valid_draft(tmp_path: Path) -> None:
    done = _interlock("import", "crontab", str(CRONTABS / "odd-lines"), "--host", "db1",
                      "--grace", "10m", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "odd-lines:29:1: minute range `5-1` goes backwards" in done.stderr
    assert done.stderr.count("(skipped)") == 12 and "12 line(s) skipped" in done.stdout
    mapping = (tmp_path / "mappings" / "cron-db1.yaml").read_text()
    assert "system: cron/db1" in mapping and "grace: 10m" in mapping
    assert _interlock("validate", "flows/", cwd=tmp_path).returncode == 0
    again = _interlock("import", "crontab", str(CRONTABS / "odd-lines"), "--host", "db1",
                       cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    bad = _interlock("import", "crontab", str(CRONTABS / "odd-lines"), "--host", "db2",
                     "--grace", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and "grace 'soon'" in bad.stderr and "Traceback" not in bad.stderr
