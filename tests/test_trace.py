"""Failure tracing across systems: the timeline, upstream context, root cause and deep links
(`interlock.trace`), through Python, the API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer
from interlock_airflow import AirflowAdapter

from interlock.adapters.contract import (
    ForeignEvent,
    Handle,
    JobSpec,
    LogChunk,
    Observation,
)
from interlock.adapters.registry import default_registry
from interlock.api.main import create_app
from interlock.cli.main import app
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.events import intake
from interlock.operations import runs as ops
from interlock.spec.loader import parse_flow
from interlock.states import NodeState
from interlock.store.db import session_scope
from interlock.store.runs import Loaded, RunFilter
from interlock.store.tables import NodeRun, Run
from interlock.trace import RunTrace, SpanKind, trace_run
from interlock.trace.cause import root_cause
from interlock.trace.collect import Collector
from tests.helpers import wait_run

NS = "tests.trace"
API = "/api/v1"
UI = "https://airflow.example.test"
# A real failure: a shell command that says why on stderr and exits 3.
FAIL = "echo 'no rows for 2026-11-24' >&2; exit 3"

DIAMOND = f"""
id: diamond
namespace: {NS}
nodes:
  a: {{uses: script, with: {{command: "echo extracted"}}}}
  b: {{uses: script, needs: [a], with: {{command: "sleep 0.2"}}}}
  c: {{uses: script, needs: [a], with: {{command: "{FAIL}"}}}}
  d: {{uses: script, needs: [b, c], with: {{command: "true"}}}}
"""

RETRIED = f"""
id: retried
namespace: {NS}
nodes:
  flaky: {{uses: script, retry: {{attempts: 2, backoff: 100ms}}, with: {{command: "{FAIL}"}}}}
"""

UPSTREAM = f"""
id: upstream
namespace: {NS}
nodes:
  work: {{uses: script, with: {{command: "{FAIL}"}}}}
"""


def _register(text: str) -> None:
    ops.register(dedent(text).lstrip())


def _start(flow_id: str, embedded: EmbeddedDispatcher) -> str:
    return ops.start_run(namespace=NS, flow_id=flow_id, inputs={}, dispatcher=embedded)


def _finished_run(text: str, embedded: EmbeddedDispatcher) -> str:
    _register(text)
    flow_id = text.split("id: ", 1)[1].split()[0]
    run_id = _start(flow_id, embedded)
    wait_run(run_id)
    return run_id


def _triggered_run(flow_id: str) -> str:
    deadline = time.monotonic() + 30
    while not (runs := ops.list_runs(filters=RunFilter(namespace=NS, flow_id=flow_id)).runs):
        assert time.monotonic() < deadline, f"no run of {flow_id} was triggered"
        time.sleep(0.05)
    wait_run(runs[0].id)
    return runs[0].id


def _attempts(trace: RunTrace) -> dict[str, Any]:
    return {s.label: s for s in trace.spans if s.kind is SpanKind.ATTEMPT}


# --- one run ------------------------------------------------------------------------------


def test_a_failing_diamond_names_the_failed_branch_not_the_skipped_join(
        embedded: EmbeddedDispatcher) -> None:
    run_id = _finished_run(DIAMOND, embedded)
    trace = trace_run(run_id)

    cause = trace.root_cause
    assert cause is not None
    assert (cause.node_id, cause.run_id, cause.uses, cause.system) == ("c", run_id, "script", None)
    assert cause.error == "exit code 3"
    assert "no rows for 2026-11-24" in (cause.log_excerpt or "")
    assert cause.path == ["d skipped: upstream c failed", "c failed: exit code 3"]
    assert cause.also_failed == []
    assert cause.deep_link is not None and cause.deep_link.startswith("file:///")
    assert Path(cause.deep_link.removeprefix("file://")).is_dir()  # the attempt's directory

    # the timeline: the run, then every attempt with its times, by start
    assert trace.spans[0].kind is SpanKind.RUN and trace.spans[0].run_id == run_id
    attempts = _attempts(trace)
    assert set(attempts) == {"a #1", "b #1", "c #1"}  # d was skipped: it never ran
    for span in attempts.values():
        assert span.started_at and span.finished_at and span.duration_s is not None
        assert span.started_at <= span.finished_at and span.parent_id == f"run:{run_id}"
    starts = [s.started_at for s in trace.spans if s.started_at]
    assert starts == sorted(starts)
    assert attempts["a #1"].finished_at <= attempts["c #1"].started_at  # type: ignore[operator]
    nodes = {n.id: n for n in trace.nodes}
    assert nodes["d"].state is NodeState.SKIPPED and nodes["d"].attempts == []
    assert nodes["d"].reason == "upstream `c` failed"
    assert trace.finished_at == trace.run.finished_at and trace.notes == []


def test_each_failed_attempt_of_a_retried_node_is_its_own_span(
        embedded: EmbeddedDispatcher) -> None:
    run_id = _finished_run(RETRIED, embedded)
    trace = trace_run(run_id)
    first, second = _attempts(trace)["flaky #1"], _attempts(trace)["flaky #2"]
    assert (first.state, second.state) == ("failed", "failed")
    assert first.finished_at is not None and second.started_at is not None
    assert first.finished_at <= second.started_at  # the backoff lies between them
    assert trace.nodes[0].attempts == [first.id, second.id]
    cause = trace.root_cause
    assert cause is not None and cause.span_id == second.id
    assert cause.path == ["flaky failed after 2 attempts: exit code 3"]


def test_a_run_that_succeeded_has_no_root_cause(embedded: EmbeddedDispatcher) -> None:
    run_id = _finished_run(f"""
        id: fine
        namespace: {NS}
        nodes:
          only: {{uses: noop, with: {{x: 1}}}}
    """, embedded)
    trace = trace_run(run_id)
    assert trace.root_cause is None
    assert [s.kind for s in trace.spans] == [SpanKind.RUN, SpanKind.ATTEMPT]


# --- across runs and systems ------------------------------------------------------------------


def test_a_run_triggered_by_a_failed_upstream_shows_it_and_keeps_its_own_cause(
        embedded: EmbeddedDispatcher) -> None:
    _register(UPSTREAM)
    _register(f"""
        id: cleanup
        namespace: {NS}
        triggers: [{{after: {{flow: upstream, state: failed}}}}]
        nodes:
          tidy: {{uses: noop, with: {{x: 1}}}}
    """)
    _register(f"""
        id: alert
        namespace: {NS}
        triggers: [{{after: {{flow: upstream, state: failed}}}}]
        nodes:
          page: {{uses: script, with: {{command: "echo 'pager down' >&2; exit 3"}}}}
    """)
    upstream = _start("upstream", embedded)
    assert wait_run(upstream).state == "failed"

    cleanup = trace_run(_triggered_run("cleanup"))
    spans = {s.id: s for s in cleanup.spans}
    own = spans[f"run:{cleanup.run.id}"]
    assert own.parent_id == f"run:{upstream}" and not own.upstream
    parent = spans[f"run:{upstream}"]
    assert (parent.upstream, parent.state, parent.label) == (True, "failed", f"{NS}/upstream")
    work = _attempts(cleanup)["work #1"]
    assert work.upstream and work.run_id == upstream and work.state == "failed"
    assert {(n.run_id, n.id) for n in cleanup.nodes} == {(upstream, "work"),
                                                        (cleanup.run.id, "tidy")}
    assert cleanup.spans[0].id == f"run:{upstream}"  # upstream first on the timeline
    assert cleanup.root_cause is None  # the downstream itself succeeded

    alert = trace_run(_triggered_run("alert"))
    cause = alert.root_cause
    assert cause is not None and (cause.node_id, cause.run_id) == ("page", alert.run.id)
    assert "pager down" in (cause.log_excerpt or "")
    assert f"run:{upstream}" in {s.id for s in alert.spans}
    upstream_cause = trace_run(upstream).root_cause
    assert upstream_cause is not None and upstream_cause.node_id == "work"


def test_a_failed_run_with_no_failed_node_is_blamed_on_the_upstream_failure(
        embedded: EmbeddedDispatcher) -> None:
    # The planner fails a run only through a node, so this run is made up; the upstream
    # one is real.
    upstream = _finished_run(UPSTREAM, embedded)
    flow = parse_flow(dedent(f"""
        id: made-up
        namespace: {NS}
        nodes:
          tidy: {{uses: noop}}
    """).lstrip())
    at = datetime.now(UTC)
    trigger = {"type": "after", "system": "interlock", "job_id": f"{NS}/upstream",
               "external_id": upstream, "state": "failed", "remote_status": "failed"}
    run = Run(id="made-up-run", namespace=NS, flow_id="made-up", state="failed",
              reason="failed", trigger=trigger, created_at=at, finished_at=at)
    tidy = NodeRun(run_id=run.id, node_id="tidy", uses="noop", state="cancelled",
                   updated_at=at)
    with session_scope() as session:
        collector = Collector(session)
        collector.add_upstream(run)
        collector.loaded[run.id] = Loaded(run=run, flow=flow, nodes={"tidy": tidy}, attempts={})
        cause = root_cause(run.id, collector.loaded, collector.spans)
    assert cause is not None and (cause.node_id, cause.run_id) == ("work", upstream)
    assert cause.path == [
        f"run made-up-run failed with no failed node; interlock {NS}/upstream run {upstream} "
        "failed and triggered it", "work failed: exit code 3"]


@pytest.fixture
def airflow_test(embedded: EmbeddedDispatcher, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> EmbeddedDispatcher:
    """A registered `airflow/test` system whose UI is at UI."""
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent(f"""
        systems:
          airflow/test: {{url: "http://127.0.0.1:9", ui_url: "{UI}/"}}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    return embedded


def _dag_run(dag_id: str, run_id: str, state: NodeState, status: str) -> ForeignEvent:
    start = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    return ForeignEvent(system="airflow/test", job_id=dag_id, external_id=run_id,
                        remote_status=status, state=state, run_type="scheduled",
                        started_at=start, ended_at=start + timedelta(minutes=3))


def test_a_run_triggered_by_a_foreign_dag_run_links_to_it(
        airflow_test: EmbeddedDispatcher) -> None:
    _register(f"""
        id: after-ingest
        namespace: {NS}
        triggers: [{{after: {{system: airflow/test, dag_id: ingest_customers}}}}]
        nodes:
          report: {{uses: noop, with: {{x: 1}}}}
    """)
    dag_run = "scheduled__2026-11-24T06:00:00+00:00"
    outcome = intake.apply("airflow", _dag_run("ingest_customers", dag_run,
                                               NodeState.SUCCEEDED, "success"),
                           dispatcher=airflow_test, origin="test")
    (fired,) = outcome.fired
    wait_run(fired.run_id)

    trace = trace_run(fired.run_id)
    foreign = trace.spans[0]
    assert foreign.id == f"foreign:airflow/test/ingest_customers/{dag_run}"
    assert (foreign.kind, foreign.upstream, foreign.state) == (SpanKind.FOREIGN_RUN, True,
                                                               "succeeded")
    assert foreign.deep_link == f"{UI}/dags/ingest_customers/runs/{dag_run}"
    assert foreign.duration_s == 180.0 and foreign.remote_status == "success"
    own = next(s for s in trace.spans if s.id == f"run:{fired.run_id}")
    assert own.parent_id == foreign.id
    assert trace.root_cause is None


class FakeAirflow(AirflowAdapter):
    """Starts "DAG runs" with the handle the real Airflow adapter writes, and reports them
    failed on the task `load` once the test says the DAG run finished; its deep links are
    the real adapter's."""

    kind: ClassVar[str] = "airflow"
    poll_interval: ClassVar[tuple[float, float]] = (0.05, 0.2)

    def __init__(self) -> None:
        self.finished = threading.Event()

    def submit(self, job: JobSpec, *, key: str) -> Handle:
        dag_id, run_id = job.params["dag_id"], f"interlock__{key}"
        return Handle(kind=self.kind, external_id=run_id, system=job.params["system"],
                      url=f"{UI}/dags/{dag_id}/runs/{run_id}",
                      data={"dag_id": dag_id, "run_after": "2026-11-24T06:00:00+00:00"})

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        if not self.finished.is_set():
            return [Observation(handle=h, state=NodeState.RUNNING, remote_status="running")
                    for h in handles]
        return [Observation(handle=h, state=NodeState.FAILED, remote_status="failed",
                            error=f"DAG run {h.external_id} of {h.data['dag_id']} failed on "
                                  f"{h.system}; failed task(s): load",
                            log_excerpt="KeyError: 'customer_id'") for h in handles]

    def cancel(self, handle: Handle) -> None:
        return None

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        return LogChunk(text="KeyError: 'customer_id'\n")


@pytest.fixture
def fake_airflow(airflow_test: EmbeddedDispatcher) -> Iterator[FakeAirflow]:
    adapter = FakeAirflow()
    default_registry().add_instance(adapter)
    try:
        yield adapter
    finally:
        default_registry().remove(adapter.kind)  # the real adapter's entry point stays


def test_a_dag_run_a_node_started_is_a_child_span_and_the_cause_links_to_its_task(
        fake_airflow: FakeAirflow, airflow_test: EmbeddedDispatcher) -> None:
    _register(f"""
        id: nightly
        namespace: {NS}
        nodes:
          transform: {{uses: airflow, with: {{system: airflow/test, dag_id: transform}}}}
          publish: {{uses: noop, needs: [transform]}}
    """)
    run_id = _start("nightly", airflow_test)
    deadline = time.monotonic() + 30
    while not (attempts := ops.get_run(run_id).nodes[0].attempts) or attempts[0].handle is None:
        assert time.monotonic() < deadline, "the DAG run was never submitted"
        time.sleep(0.05)
    dag_run = attempts[0].handle.external_id
    intake.apply("airflow", _dag_run("transform", dag_run, NodeState.FAILED, "failed"),
                 dispatcher=airflow_test, origin="test")
    fake_airflow.finished.set()
    assert wait_run(run_id).state == "failed"

    trace = trace_run(run_id)
    attempt = _attempts(trace)["transform #1"]
    child = next(s for s in trace.spans if s.kind is SpanKind.FOREIGN_RUN)
    assert (child.parent_id, child.run_id, child.upstream) == (attempt.id, run_id, False)
    assert child.started_at == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert child.deep_link == f"{UI}/dags/transform/runs/{dag_run}"
    cause = trace.root_cause
    assert cause is not None
    assert (cause.node_id, cause.system, cause.uses, cause.external_id) == (
        "transform", "airflow/test", "airflow", dag_run)
    assert cause.deep_link == f"{UI}/dags/transform/runs/{dag_run}/tasks/load"
    assert cause.log_excerpt == "KeyError: 'customer_id'"
    assert cause.path == ["publish skipped: upstream transform failed",
                          f"transform failed: DAG run {dag_run} of transform failed on "
                          "airflow/test; failed task(s): load"]


# --- API and CLI -------------------------------------------------------------------------


def test_the_api_returns_the_documented_trace(embedded: EmbeddedDispatcher) -> None:
    with TestClient(create_app(dispatcher=embedded)) as client:
        client.headers.update(bearer())
        run_id = _finished_run(DIAMOND, embedded)
        resp = client.get(f"{API}/runs/{run_id}/trace")
        assert resp.status_code == 200, resp.text
        trace = RunTrace.model_validate(resp.json())
        assert trace == trace_run(run_id)
        assert trace.root_cause is not None and trace.root_cause.node_id == "c"

        missing = client.get(f"{API}/runs/nope/trace")
        assert missing.status_code == 404
        assert missing.json() == client.get(f"{API}/runs/nope").json() == {
            "detail": "run `nope` does not exist"}

        schema = client.get("/openapi.json").json()
        assert {"RunTrace", "Span", "RootCause", "NodeTrace"} <= set(schema["components"]
                                                                   ["schemas"])
        answers = schema["paths"][f"{API}/runs/{{run_id}}/trace"]["get"]["responses"]
        assert answers["200"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/RunTrace"}
        assert "404" in answers


def test_the_cli_prints_the_tree_timeline_and_root_cause(
        sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    flow = tmp_path / "diamond.yaml"
    flow.write_text(dedent(DIAMOND).lstrip())
    runner = CliRunner()
    started = runner.invoke(app, ["run", str(flow), "--json"])
    assert started.exit_code == 1, started.output
    run_id = json.loads(started.stdout)["id"]

    shown = runner.invoke(app, ["trace", run_id])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "root cause" in text and "timeline" in text
    cause = next(line for line in text.splitlines() if "node " in line and "(run " in line)
    assert " c " in cause
    assert "exit code 3" in text and "no rows for 2026-11-24" in text
    assert "d skipped: upstream c failed" in text
    rows = [line.split()[0] for line in text.splitlines() if "█" in line or "▏" in line]
    assert rows[0] == f"{NS}/diamond" and rows.index("a") < rows.index("c")

    as_json = runner.invoke(app, ["trace", run_id, "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert RunTrace.model_validate_json(as_json.stdout) == trace_run(run_id)

    missing = runner.invoke(app, ["trace", "nope"])
    assert missing.exit_code == 1 and "run `nope` does not exist" in missing.output
