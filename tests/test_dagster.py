"""`uses: dagster` against a real Dagster 1.13.27 (the session's `dagster_server`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from airflow_flows import node, push_api, start, wait_node, wait_triggered
from dagster_harness import DagsterServer
from helpers import wait_run
from sqlalchemy import select

from interlock.adapters.contract import JobSpec
from interlock.adapters.registry import default_registry
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import Attempt, AuditRecord

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def dagster_env(dagster_server: DagsterServer, sqlite_store: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddedDispatcher]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent(f"""
        systems:
          dagster/test:
            url: "{dagster_server.url}"
            timeout: 10
            events_secret: {{env: DAGSTER_TEST_EVENTS_SECRET}}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("DAGSTER_TEST_EVENTS_SECRET", dagster_server.events_secret)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def _tags(server: DagsterServer, run_id: str) -> dict[str, str]:
    return {t["key"]: t["value"] for t in server.run(run_id)["tags"]}


def test_run_config_from_upstream_outputs_and_outputs_downstream(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    run_id = start("""
        id: scoring
        namespace: tests.dagster
        nodes:
          count: {uses: noop, with: {rows: 5}}
          score:
            uses: dagster
            needs: [count]
            with:
              system: dagster/test
              job: interlock_ok_job
              run_config: {ops: {extract: {config: {rows: "{{ nodes.count.outputs.rows }}"}}}}
          report: {uses: noop, needs: [score], with: {score: "{{ nodes.score.outputs.score }}"}}
    """, dagster_env)
    detail = wait_run(run_id, timeout=180)
    assert detail.state.value == "succeeded", [n.error for n in detail.nodes]
    score = node(detail, "score")
    assert score.outputs["score"] == 0.42 and score.outputs["rows"] == 5
    assert node(detail, "report").outputs == {"score": 0.42}
    tags = _tags(dagster_server, score.attempts[0].handle.external_id)
    assert tags["interlock/run_id"] == run_id and tags["interlock/node_id"] == "score"
    assert tags["interlock/traceparent"].split("-")[1] == detail.trace_id
    assert tags["interlock/key"] == score.attempts[0].key


def test_an_asset_materialization_node(dagster_env: EmbeddedDispatcher) -> None:
    run_id = start("""
        id: assets
        namespace: tests.dagster
        nodes:
          customers: {uses: dagster, with: {system: dagster/test, assets: [raw_customers]}}
    """, dagster_env)
    detail = wait_run(run_id, timeout=180)
    assert detail.state.value == "succeeded", [n.error for n in detail.nodes]
    assert node(detail, "customers").outputs["materializations"]["raw_customers"]["rows"] == 3


def test_a_failing_op_names_the_step_and_the_error(dagster_env: EmbeddedDispatcher) -> None:
    run_id = start("""
        id: failing
        namespace: tests.dagster
        nodes:
          risk: {uses: dagster, with: {system: dagster/test, job: interlock_fail_job}}
    """, dagster_env)
    detail = wait_run(run_id, timeout=180)
    risk = node(detail, "risk")
    assert risk.state.value == "failed"
    assert "failed step(s): explode: ValueError: risk model unavailable" in risk.error
    with session_scope() as session:
        attempt = session.query(Attempt).filter_by(run_id=run_id).one()
        assert attempt.log_excerpt is not None and "risk model unavailable" in attempt.log_excerpt


def test_bad_names_and_run_config_fail_readably(dagster_env: EmbeddedDispatcher) -> None:
    run_id = start("""
        id: bad
        namespace: tests.dagster
        nodes:
          no_job: {uses: dagster, with: {system: dagster/test, job: nope_job}}
          no_asset: {uses: dagster, with: {system: dagster/test, assets: [nope/asset]}}
          bad_config:
            uses: dagster
            with: {system: dagster/test, job: interlock_ok_job,
                   run_config: {ops: {extract: {config: {rows: "many"}}}}}
    """, dagster_env)
    detail = wait_run(run_id, timeout=120)
    assert "job 'nope_job' does not exist on dagster/test" in node(detail, "no_job").error
    assert "nope/asset" in node(detail, "no_asset").error
    bad = node(detail, "bad_config").error
    assert "refused the run_config of job 'interlock_ok_job'" in bad and "rows" in bad


def test_the_same_attempt_submitted_twice_makes_one_run(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    adapter = default_registry().get("dagster")
    job = JobSpec(run_id="d" * 32, node_id="n", attempt=1, flow="tests/dup",
                  params={"system": "dagster/test", "job": "interlock_ok_job",
                          "run_config": {"ops": {"extract": {"config": {"rows": 1}}}}},
                  traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    key = f"dup-{id(job)}-{dagster_server.port}"
    first = adapter.submit(job, key=key)
    second = adapter.submit(job, key=key)
    assert first.external_id == second.external_id
    assert len(dagster_server.runs(tags={"interlock/key": key})) == 1


def test_from_failure_retry_reexecutes_the_failed_run(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    run_id = start("""
        id: flaky
        namespace: tests.dagster
        nodes:
          flaky:
            uses: dagster
            with: {system: dagster/test, job: interlock_flaky_job}
            retry: {attempts: 2, mode: from_failure, backoff: 1s}
    """, dagster_env)
    detail = wait_run(run_id, timeout=240)
    flaky = node(detail, "flaky")
    assert detail.state.value == "succeeded", flaky.error
    first, second = flaky.attempts
    assert first.state.value == "failed" and second.state.value == "succeeded"
    rerun = dagster_server.run(second.handle.external_id)
    assert rerun["parentRunId"] == first.handle.external_id


def test_a_script_nodes_produces_appears_as_a_dagster_materialization(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    mapping = tmp_path / "datasets.yaml"
    mapping.write_text(dedent("""
        datasets:
          - namespace: postgres://risk
            name: public.sanctions_hits
            assets: [{system: dagster/test, key: risk/sanctions_hits}]
    """))
    monkeypatch.setenv("INTERLOCK_DATASETS", str(mapping))
    run_id = start("""
        id: screen-elsewhere
        namespace: tests.dagster
        nodes:
          screen:
            uses: script
            with: {command: "echo hits=2 >> $INTERLOCK_OUTPUT"}
            produces: [{namespace: "postgres://risk", name: public.sanctions_hits}]
    """, dagster_env)
    assert wait_run(run_id, timeout=60).state.value == "succeeded"
    deadline = time.monotonic() + 30
    while True:
        seen = [m for m in dagster_server.asset_materializations(["risk", "sanctions_hits"])
                if _meta(m).get("interlock/run_id") == run_id]
        if seen:
            break
        assert time.monotonic() < deadline, "no materialization of risk/sanctions_hits"
        time.sleep(0.3)
    assert _meta(seen[0])["interlock/node_id"] == "screen"
    assert seen[0]["runId"] == ""  # runless: made outside Dagster


def _meta(materialization: dict[str, Any]) -> dict[str, Any]:
    return {e["label"]: next((v for k, v in e.items() if k not in ("__typename", "label")),
                             None) for e in materialization["metadataEntries"]}


def test_the_push_sensor_reports_runs_and_a_foreign_run_triggers_a_flow(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    with push_api(dagster_server.events_port, dagster_env):
        ops.register(dedent("""
            id: after-scores
            namespace: tests.dagster
            triggers:
              - after: {system: dagster/test, job: interlock_ok_job, state: SUCCESS}
            nodes:
              publish: {uses: noop, with: {v: 1}}
        """).lstrip())
        foreign = dagster_server.launch(
            "interlock_ok_job", run_config={"ops": {"extract": {"config": {"rows": 2}}}})
        assert dagster_server.wait_run(foreign, timeout=120) == "SUCCESS"
        fired = wait_triggered("tests.dagster", "after-scores", foreign, timeout=60,
                               why="the Dagster run did not trigger the flow")
        assert wait_run(fired, timeout=30).state.value == "succeeded"
        with session_scope() as session:
            pushed = session.scalars(select(AuditRecord.target).where(
                AuditRecord.action == audit.Action.EVENT_ACCEPTED.value)).all()
        assert f"dagster/test/interlock_ok_job/{foreign}" in pushed  # came by push


def test_import_writes_jobs_and_assets_with_their_dependencies(
        dagster_env: EmbeddedDispatcher, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from interlock.cli.main import app
    from interlock.spec import parse_flow

    target = tmp_path / "dagster-test.yaml"
    result = CliRunner().invoke(app, ["import", "dagster", "--system", "dagster/test",
                                      "-o", str(target)])
    assert result.exit_code == 0, result.output
    jobs = yaml.safe_load(target.read_text())["jobs"]
    assert jobs["interlock_ok_job"]["type"] == "job"
    assert jobs["asset:customer_scores"]["depends_on"] == ["raw_customers"]
    assert "asset:risk/sanctions_hits" in jobs
    flow = parse_flow(yaml.safe_dump({"id": "pasted", "nodes": {
        "a": jobs["interlock_ok_job"]["node"], "b": jobs["asset:raw_customers"]["node"]}}))
    assert flow.nodes["b"].with_["assets"] == ["raw_customers"]


def test_dagster_down_at_submit_is_retried_and_makes_one_run(
        dagster_env: EmbeddedDispatcher, dagster_server: DagsterServer) -> None:
    dagster_server.stop()
    try:
        run_id = start("""
            id: while-down
            namespace: tests.dagster
            nodes:
              score:
                uses: dagster
                with: {system: dagster/test, job: interlock_ok_job,
                       run_config: {ops: {extract: {config: {rows: 3}}}}}
        """, dagster_env)
        time.sleep(4)  # submits meet a dead Dagster: Transient, retried with backoff
        detail = ops.get_run(run_id)
        assert node(detail, "score").state.value == "queued"
        assert "submit failed" in (node(detail, "score").attempts[0].remote_status or "")
    finally:
        dagster_server.start()
        dagster_server.wait_healthy()
    detail = wait_run(run_id, timeout=180)
    assert detail.state.value == "succeeded", [n.error for n in detail.nodes]
    key = node(detail, "score").attempts[0].key
    assert len(dagster_server.runs(tags={"interlock/key": key})) == 1


def test_cancelling_terminates_the_dagster_run(dagster_env: EmbeddedDispatcher,
                                               dagster_server: DagsterServer) -> None:
    run_id = start("""
        id: cancel-me
        namespace: tests.dagster
        nodes:
          slow:
            uses: dagster
            with: {system: dagster/test, job: interlock_slow_job,
                   run_config: {ops: {nap: {config: {seconds: 120}}}}}
          elsewhere: {uses: dagster, with: {system: dagster/test, job: interlock_ok_job,
                                            location: no-such-location}}
    """, dagster_env)
    detail = wait_node(run_id, "slow", "running", timeout=60)
    dagster_run = node(detail, "slow").attempts[0].handle.external_id
    deadline = time.monotonic() + 60
    while dagster_server.run_status(dagster_run) not in ("STARTED", "FAILURE"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    ops.cancel_run(run_id, dispatcher=dagster_env)
    detail = wait_run(run_id, timeout=60)
    assert detail.state.value == "cancelled"
    assert "no code location 'no-such-location'" in node(detail, "elsewhere").error
    assert dagster_server.wait_run(dagster_run, timeout=60) == "CANCELED"
