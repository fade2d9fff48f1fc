"""`uses: airflow` against a real Airflow 3.3.2 (the session's `airflow_server`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_flows import (
    SECRET_ENV,
    node,
    push_api,
    start,
    wait_node,
    wait_triggered,
    write_systems,
)
from airflow_harness import AirflowServer
from helpers import bearer, wait_run
from sqlalchemy import select

from interlock.adapters.contract import JobSpec
from interlock.adapters.registry import default_registry
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import Rejected
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import Attempt, AuditRecord, ExternalRun

pytestmark = pytest.mark.timeout(600)

OK_FLOW = """
    id: screening
    namespace: tests.airflow
    inputs:
      day: {type: string, default: "2026-11-24"}
    nodes:
      ingest:
        uses: airflow
        with:
          system: airflow/test
          dag_id: interlock_ok
          conf: {day: "{{ inputs.day }}", customer: c-42}
          outputs_from: [extract, screen]
      report:
        uses: noop
        needs: [ingest]
        with: {hits: "{{ nodes.ingest.outputs.hits }}", day: "{{ nodes.ingest.outputs.day }}"}
"""


@pytest.fixture
def airflow_env(airflow_server: AirflowServer, sqlite_store: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(write_systems(tmp_path, airflow_server)))
    monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def _runs_of(server: AirflowServer, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    runs = server.get_json(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]
    return [r for r in runs if r["dag_run_id"] == run_id]


def test_outputs_flow_downstream_and_context_reaches_airflow(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    run_id = start(OK_FLOW, airflow_env, day="2026-11-20")
    detail = wait_run(run_id, timeout=120)
    assert detail.state.value == "succeeded", detail
    ingest = node(detail, "ingest")
    assert ingest.outputs["hits"] == 2 and ingest.outputs["rows"] == 3
    assert ingest.outputs["extract"] == {"rows": 3, "day": "2026-11-20"}
    assert node(detail, "report").outputs == {"hits": 2, "day": "2026-11-20"}
    dag_run_id = ingest.attempts[0].handle.external_id
    assert dag_run_id == ingest.attempts[0].key  # the idempotency key is the dag_run_id
    conf = airflow_server.dag_run("interlock_ok", dag_run_id)["conf"]
    assert conf["day"] == "2026-11-20" and conf["customer"] == "c-42"
    assert conf["interlock"]["run_id"] == run_id and conf["interlock"]["node_id"] == "ingest"
    assert conf["interlock"]["traceparent"].split("-")[1] == detail.trace_id
    assert conf["openlineage"]["rootParentRunId"].replace("-", "") == run_id
    assert conf["openlineage"]["parentJobName"] == "tests.airflow/screening.ingest"


def test_a_failing_dag_names_the_failed_task_and_its_log(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    run_id = start("""
        id: failing
        namespace: tests.airflow
        nodes:
          screen: {uses: airflow, with: {system: airflow/test, dag_id: interlock_fail}}
          after: {uses: noop, needs: [screen]}
    """, airflow_env)
    detail = wait_run(run_id, timeout=120)
    screen = node(detail, "screen")
    assert (detail.state.value, screen.state.value) == ("failed", "failed")
    assert "failed task(s): explode" in screen.error and "airflow/test" in screen.error
    assert node(detail, "after").state.value == "skipped"
    with session_scope() as session:
        excerpt = session.scalar(select(Attempt.log_excerpt).where(Attempt.run_id == run_id,
                                                                   Attempt.node_id == "screen"))
    assert excerpt is not None and "ValueError: sanctions list unreachable" in excerpt
    logs = ops.node_logs(run_id, "screen")
    assert "task explode" in logs.text and "checking sanctions list" in logs.text
    # the run's trace names the root cause in Airflow, with a link to the failed task
    from interlock.trace.build import trace_run
    cause = trace_run(run_id).root_cause
    assert cause is not None and (cause.node_id, cause.system) == ("screen", "airflow/test")
    dag_run = screen.attempts[0].handle.external_id
    assert cause.deep_link == (f"{airflow_server.url}/dags/interlock_fail/runs/{dag_run}"
                               "/tasks/explode")
    assert "explode" in (cause.error or "")
    assert "ValueError: sanctions list unreachable" in (cause.log_excerpt or "")


def test_the_same_attempt_submitted_twice_makes_one_dag_run(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    adapter = default_registry().get("airflow")
    key = f"dup-{time.time_ns()}"
    job = JobSpec(run_id="0" * 32, node_id="n", attempt=1, flow="tests/dup",
                  params={"system": "airflow/test", "dag_id": "interlock_ok"},
                  traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    first = adapter.submit(job, key=key)
    second = adapter.submit(job, key=key)  # a redelivered task: Airflow answers 409, adopted
    assert first.external_id == second.external_id == key
    assert len(_runs_of(airflow_server, "interlock_ok", key)) == 1
    assert airflow_server.wait_dag_run("interlock_ok", key) == "success"


def test_unknown_dag_or_system_fails_the_node_with_their_names(
        airflow_env: EmbeddedDispatcher) -> None:
    run_id = start("""
        id: unknown
        namespace: tests.airflow
        nodes:
          no_dag: {uses: airflow, with: {system: airflow/test, dag_id: no_such_dag}}
          no_system: {uses: airflow, with: {system: airflow/nowhere, dag_id: interlock_ok}}
    """, airflow_env)
    detail = wait_run(run_id, timeout=60)
    no_dag, no_system = node(detail, "no_dag"), node(detail, "no_system")
    assert "'no_such_dag'" in no_dag.error and "airflow/test" in no_dag.error
    assert "'airflow/nowhere'" in no_system.error and "not registered" in no_system.error


def test_clear_failed_retries_the_same_dag_run(airflow_env: EmbeddedDispatcher,
                                               airflow_server: AirflowServer) -> None:
    run_id = start("""
        id: flaky
        namespace: tests.airflow
        nodes:
          flaky:
            uses: airflow
            with: {system: airflow/test, dag_id: interlock_flaky, outputs_from: [flaky]}
            retry: {attempts: 2, mode: clear_failed, backoff: 1s}
    """, airflow_env)
    detail = wait_run(run_id, timeout=180)
    flaky = node(detail, "flaky")
    assert detail.state.value == "succeeded", flaky
    first, second = flaky.attempts
    assert (first.state.value, second.state.value) == ("failed", "succeeded")
    assert first.handle.external_id == second.handle.external_id == first.key
    assert len(_runs_of(airflow_server, "interlock_flaky", first.key)) == 1
    instance = airflow_server.get_json(
        f"/api/v2/dags/interlock_flaky/dagRuns/{first.key}/taskInstances/flaky")
    assert instance["try_number"] == 2 and flaky.outputs["ok"] is True


def test_cancelling_marks_the_dag_run_failed(airflow_env: EmbeddedDispatcher,
                                             airflow_server: AirflowServer) -> None:
    run_id = start("""
        id: cancel-me
        namespace: tests.airflow
        nodes:
          slow: {uses: airflow, with: {system: airflow/test, dag_id: interlock_slow,
                                       conf: {seconds: 60}}}
    """, airflow_env)
    detail = wait_node(run_id, "slow", "running", timeout=60)
    key = node(detail, "slow").attempts[0].key
    ops.cancel_run(run_id, dispatcher=airflow_env)
    assert wait_run(run_id, timeout=60).state.value == "cancelled"
    assert airflow_server.wait_dag_run("interlock_slow", key, timeout=60) == "failed"


def test_push_events_advance_the_flow_and_foreign_runs_trigger_flows(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    with push_api(airflow_server.events_port, airflow_env,
                  producer_token=airflow_server.lineage_token):
        flow, _ = ops.register("""
id: after-ok
namespace: tests.airflow
triggers:
  - after: {system: airflow/test, dag_id: interlock_ok, state: success}
nodes:
  follow: {uses: noop, with: {v: 1}}
""")
        foreign = airflow_server.trigger("interlock_ok", conf={"day": "2026-11-01"})
        assert airflow_server.wait_dag_run("interlock_ok", foreign["dag_run_id"]) == "success"
        triggered = wait_triggered("tests.airflow", "after-ok", foreign["dag_run_id"],
                                   timeout=30, why="the foreign DAG run did not trigger the flow")
        detail = wait_run(triggered, timeout=30)
        assert detail.state.value == "succeeded"
        assert detail.trigger["external_id"] == foreign["dag_run_id"]
        assert detail.trigger["run_type"] == "manual"
        with session_scope() as session:
            ext = session.scalar(select(ExternalRun).where(
                ExternalRun.external_id == foreign["dag_run_id"]))
            assert ext is not None and ext.attempt_id is None and ext.state == "succeeded"

        # A run of ours: its pushed events are matched to the attempt and recorded.
        ours = wait_run(start(OK_FLOW, airflow_env), timeout=120)
        attempt = node(ours, "ingest").attempts[0]
        with session_scope() as session:
            ext = session.scalar(select(ExternalRun).where(ExternalRun.external_id == attempt.key))
            assert ext is not None and ext.state == "succeeded"
            assert ext.attempt_id is not None
            pushed = session.scalars(select(AuditRecord.target).where(
                AuditRecord.action == audit.Action.EVENT_ACCEPTED.value)).all()
        assert f"airflow/test/interlock_ok/{attempt.key}" in pushed
        # DAG runs started by another flow fire `after:` too (only a flow's own do not).
        wait_triggered("tests.airflow", "after-ok", attempt.key, timeout=30,
                       why="our DAG run did not fire the other flow")


def test_airflow_down_mid_run_then_back_completes_without_a_second_dag_run(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    run_id = start("""
        id: restart
        namespace: tests.airflow
        nodes:
          slow: {uses: airflow, with: {system: airflow/test, dag_id: interlock_slow,
                                       conf: {seconds: 8}}}
    """, airflow_env)
    detail = wait_node(run_id, "slow", "running", timeout=60)
    key = node(detail, "slow").attempts[0].key
    airflow_server.stop()
    time.sleep(5)  # polls meet a dead Airflow: the attempt must stay in flight
    assert node(ops.get_run(run_id), "slow").state.value == "running"
    airflow_server.start()
    airflow_server.wait_healthy()
    detail = wait_run(run_id, timeout=240)
    assert detail.state.value in ("succeeded", "failed")  # what Airflow decided, not LOST
    assert node(detail, "slow").state.value == detail.state.value
    assert len(node(detail, "slow").attempts) == 1
    assert len(_runs_of(airflow_server, "interlock_slow", key)) == 1


def test_import_writes_an_editable_mapping_of_dags_tasks_and_assets(
        airflow_env: EmbeddedDispatcher, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from interlock.cli.main import app
    from interlock.spec import parse_flow

    target = tmp_path / "mappings" / "airflow-test.yaml"
    result = CliRunner().invoke(app, ["import", "airflow", "--system", "airflow/test",
                                      "-o", str(target)])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(target.read_text())
    ok = doc["jobs"]["interlock_ok"]
    assert ok["tasks"]["extract"]["downstream"] == ["screen"]
    assert ok["tasks"]["screen"]["outlets"] == ["postgres://risk/public.sanctions_hits"]
    assert doc["jobs"]["interlock_daily"]["schedule"] == "0 0 * * *"
    assert ok["node"]["produces"] == [{"namespace": "postgres://risk",
                                       "name": "public.sanctions_hits"}]
    flow = parse_flow(yaml.safe_dump({"id": "pasted", "nodes": {"ingest": ok["node"]}}))
    assert flow.nodes["ingest"].with_["dag_id"] == "interlock_ok"
    # the DAG's assets are also observed lineage of the job airflow/test:interlock_ok
    from interlock.lineage.queries import lineage
    with session_scope() as session:
        graph = lineage(session, "job:airflow/test:interlock_ok", depth=1)
    ids = {n["id"] for n in graph["graph"]}
    assert {"dataset:postgres://risk:public.sanctions_hits",
            "dataset:s3://raw:customers"} <= ids, ids

    unknown = CliRunner().invoke(app, ["import", "airflow", "--system", "airflow/nope"])
    assert unknown.exit_code == 1 and "not registered" in unknown.output


def test_without_push_the_watcher_sees_foreign_runs_and_fires_after_triggers(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """No API listens on the plugin's port here: the listener's posts are lost, and the
    reconciler's watcher, listing finished DAG runs, must find the foreign run."""
    monkeypatch.setenv("INTERLOCK_WATCH_SECONDS", "1")
    settings.cache_clear()
    ops.register("""
id: after-fail
namespace: tests.airflow
triggers:
  - after: {system: airflow/test, dag_id: interlock_fail, state: failed}
nodes:
  page_someone: {uses: noop, with: {v: 1}}
""")
    foreign = airflow_server.trigger("interlock_fail")
    assert airflow_server.wait_dag_run("interlock_fail", foreign["dag_run_id"]) == "failed"
    fired = wait_triggered("tests.airflow", "after-fail", foreign["dag_run_id"], timeout=60,
                           why="the watcher did not fire the after: trigger")
    assert wait_run(fired, timeout=30).state.value == "succeeded"
    assert ops.get_run(fired).trigger["state"] == "failed"


def test_with_auth_on_a_token_is_fetched_and_fetched_again_after_a_401(
        sqlite_store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Airflow with auth on: the adapter logs in (`POST /auth/token`) with the
    password the systems file points at; after a restart with a new token-signing key its
    token is refused (401), and it logs in again instead of failing the node."""
    server = AirflowServer(tmp_path / "airflow-auth", users={"interlock": "pw-" + "x" * 8})
    server.start()
    try:
        server.wait_healthy()
        server.unpause("interlock_ok")
        (tmp_path / "systems.yaml").write_text(
            f"systems:\n  airflow/test:\n    url: {server.url}\n"
            "    auth: {username: interlock, password: {env: AF_AUTH_PASSWORD}}\n")
        monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
        monkeypatch.setenv("AF_AUTH_PASSWORD", server.users["interlock"])
        assert server.api("GET", "/api/v2/dags", headers={"Authorization": ""}).status_code \
            == 401  # auth is really on
        dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
        try:
            assert wait_run(start(OK_FLOW, dispatcher), timeout=120).state.value == "succeeded"
            server.stop()
            server.jwt_secret = "rotated-" + server.jwt_secret  # old tokens now fail
            server.start()
            server.wait_healthy()
            again = wait_run(start(OK_FLOW, dispatcher), timeout=120)
            assert again.state.value == "succeeded", [n.error for n in again.nodes]
        finally:
            dispatcher.close()
        monkeypatch.setenv("AF_AUTH_PASSWORD", "wrong")
        from interlock_airflow.client import AirflowSession

        from interlock.config.systems import load_systems
        fresh = AirflowSession(load_systems().get("airflow/test"))
        with pytest.raises(Rejected, match="refused user 'interlock'"):
            fresh.call(lambda: None)
        fresh.close()
    finally:
        server.stop()


def test_airflows_own_event_log_is_copied_into_the_audit_trail(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    """Someone clears a task in Airflow itself: the audit trail gets Airflow's entry, once.
    (The embedded dispatcher's reconciler copies the log too: copies never repeat.)"""
    from interlock.audit.foreign import copy_log
    dag_id = "interlock_ok"
    airflow_server.unpause(dag_id)
    run = airflow_server.trigger(dag_id)["dag_run_id"]
    assert airflow_server.wait_dag_run(dag_id, run) == "success"
    airflow_server.call("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances",
                        json={"dry_run": False, "dag_run_id": run, "only_failed": False})
    system = airflow_server.system
    copy_log(system)
    with session_scope() as session:
        records = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.FOREIGN_ACTION.value)
            .order_by(AuditRecord.seq)).all()
        assert audit.verify(session).ok
    clears = [r for r in records if "clear" in r.after["event"] and r.after.get("dag_id") == dag_id]
    assert clears, sorted({r.after["event"] for r in records})
    assert clears[-1].actor.startswith(f"{system}:") and clears[-1].origin == system
    # more looks, two at once (Airflow keeps logging: the cleared run runs again)
    threads = [threading.Thread(target=copy_log, args=(system,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with session_scope() as session:
        ids = [r.after["id"] for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.FOREIGN_ACTION.value)
            .order_by(AuditRecord.seq))]
    assert len(ids) >= len(records)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # in order, never twice


def test_airflows_openlineage_provider_feeds_lineage_linked_to_the_interlock_run(
        airflow_env: EmbeddedDispatcher, airflow_server: AirflowServer) -> None:
    """Airflow's own OpenLineage provider posts to `POST /api/v1/lineage` (its transport
    points at the API): the DAG's task runs land in the lineage store, parented to the
    Interlock attempt through `conf["openlineage"]`, with the assets the tasks declare."""
    from interlock.adapters.openlineage import attempt_uuid
    from interlock.store.tables.lineage import LineageEvent, LineageJob, LineageRun
    with push_api(airflow_server.events_port, airflow_env,
                  producer_token=airflow_server.lineage_token):
        run_id = start(OK_FLOW, airflow_env, day="2026-11-21")
        detail = wait_run(run_id, timeout=120)
        assert detail.state.value == "succeeded", detail
        attempt = node(detail, "ingest").attempts[0]
        deadline = time.monotonic() + 60
        while True:  # the provider posts after each task; the DAG's COMPLETE comes last
            with session_scope() as session:
                events = session.scalars(select(LineageEvent).where(
                    LineageEvent.source == "openlineage")).all()
                jobs = {j.id: j for j in session.scalars(select(LineageJob))}
                runs = session.scalars(select(LineageRun)).all()
            done = {(jobs[r.job_id].name, r.state) for r in runs
                    if jobs[r.job_id].namespace == airflow_server.system}
            if ("interlock_ok", "COMPLETE") in done and ("interlock_ok.screen", "COMPLETE") \
                    in done:
                break
            assert time.monotonic() < deadline, sorted(done)
            time.sleep(0.5)
    assert all("airflow" in e.payload["producer"] for e in events)
    # (other DAG runs of the shared Airflow may report too: ours is the one parented to us)
    dag_run = next(r for r in runs if jobs[r.job_id].name == "interlock_ok"
                   and r.source == "openlineage" and r.parent_run_id == attempt_uuid(attempt.key))
    assert dag_run.parent_job_name == "tests.airflow/screening.ingest"
    assert jobs[dag_run.job_id].system == airflow_server.system
    from fastapi.testclient import TestClient

    from interlock.api.main import create_app
    with TestClient(create_app(dispatcher=airflow_env)) as client:
        client.headers.update(bearer())
        tasks = client.get("/api/v1/lineage/impact", params={
            "nodeId": f"job:{airflow_server.system}:interlock_ok", "direction": "upstream",
            "depth": 3})
    assert tasks.status_code == 200, tasks.text
    impact = tasks.json()
    # the DAG's tasks (from the provider) and the Interlock node and flow that started it
    assert {j["name"] for j in impact["jobs"][airflow_server.system]} >= {
        "interlock_ok.extract", "interlock_ok.screen"}
    assert impact["flows"] == ["tests.airflow/screening"]
    assert set(impact["systems"]) == {airflow_server.system, "interlock"}
    # Python tasks declare Airflow assets, which the provider maps to OpenLineage datasets
    # only with the asset scheme's provider installed (not here): no datasets to assert.
