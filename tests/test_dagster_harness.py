"""The real-Dagster harness and the test definitions, end to end (no mocks)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from dagster_harness import (
    DAGSTER_VERSION,
    TEST_ASSETS,
    TEST_JOBS,
    DagsterHarnessError,
    DagsterServer,
)
from harness_process import session_pids

# The first test to use dagster_server also pays for its start (and, once, the install).
pytestmark = pytest.mark.timeout(600)

OK_CONFIG = {"ops": {"extract": {"config": {"rows": 5}}}}
SANCTIONS = ["risk", "sanctions_hits"]


def _attempt() -> dict[str, str]:
    return {"interlock/attempt": uuid.uuid4().hex}


def _metadata(entries: list[dict]) -> dict:
    """``metadataEntries`` as ``{label: value}``."""
    values = {}
    for entry in entries:
        value = [v for k, v in entry.items() if k not in ("__typename", "label")]
        values[entry["label"]] = value[0] if value else None
    return values


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _wait_status(server: DagsterServer, run_id: str, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (current := server.run_status(run_id)) != status:
        assert time.monotonic() < deadline, f"{run_id} still {current}, wanted {status}"
        time.sleep(0.25)


def test_server_is_healthy_and_lists_jobs_and_assets(dagster_server: DagsterServer) -> None:
    assert dagster_server.url == f"http://127.0.0.1:{dagster_server.port}"
    assert dagster_server.graphql_url == f"{dagster_server.url}/graphql"
    assert (dagster_server.home / "dagster.yaml").is_file()
    assert session_pids(dagster_server.pid)  # dagster dev, webserver, daemon, code server

    health = dagster_server.wait_healthy(10)
    assert health["version"] == DAGSTER_VERSION
    assert dagster_server.selector("interlock_ok_job") == {
        "repositoryLocationName": "defs.py", "repositoryName": "__repository__",
        "jobName": "interlock_ok_job",
    }
    (repo,) = health["repositoriesOrError"]["nodes"]
    assert set(TEST_JOBS) <= {job["name"] for job in repo["jobs"]}
    assert {"/".join(a["assetKey"]["path"]) for a in repo["assetNodes"]} == set(TEST_ASSETS)
    daemons = {d["daemonType"]: d for d in health["instance"]["daemonHealth"]["allDaemonStatuses"]}
    assert daemons["QUEUED_RUN_COORDINATOR"]["healthy"] is True

    # Graphql errors are raised, with Dagster's message.
    with pytest.raises(DagsterHarnessError, match="Cannot query field"):
        dagster_server.graphql("{ noSuchField }")


def test_launch_cannot_choose_the_run_id(dagster_server: DagsterServer) -> None:
    """Dagster 1.13.27: ExecutionMetadata has no runId, so no RunConflict either."""
    run_id = str(uuid.uuid4())
    with pytest.raises(DagsterHarnessError,
                       match="Field 'runId' is not defined by type 'ExecutionMetadata'"):
        dagster_server.launch("interlock_ok_job", OK_CONFIG, run_id=run_id)
    assert dagster_server.runs(run_ids=[run_id]) == []

    fields = dagster_server.graphql(
        '{ __type(name: "ExecutionMetadata") { inputFields { name } } }')["__type"]
    assert {f["name"] for f in fields["inputFields"]} == {"tags", "rootRunId", "parentRunId"}
    union = dagster_server.graphql(
        '{ __type(name: "LaunchRunResult") { possibleTypes { name } } }')["__type"]
    assert "RunConflict" in {t["name"] for t in union["possibleTypes"]}  # declared, never sent


def test_ok_job_succeeds_with_its_run_config_and_outputs(dagster_server: DagsterServer) -> None:
    attempt = _attempt()
    started = time.monotonic()
    result = dagster_server.launch_result("interlock_ok_job", OK_CONFIG, tags=attempt)
    assert result["__typename"] == "LaunchRunSuccess"
    run_id = result["run"]["runId"]
    assert result["run"]["status"] in ("QUEUED", "NOT_STARTED", "STARTING")
    assert dagster_server.wait_run(run_id, timeout=120) == "SUCCESS"
    elapsed = time.monotonic() - started

    run = dagster_server.run(run_id)
    assert run["jobName"] == "interlock_ok_job"
    assert run["parentRunId"] is None and run["rootRunId"] is None
    assert _tags(run).items() >= {**attempt, "interlock/test": "ok",
                                  "dagster/code_location": "defs.py"}.items()
    assert run["runConfigYaml"].split() == ["ops:", "extract:", "config:", "rows:", "5"]
    assert run["startTime"] <= run["endTime"]

    # The tag finds the run again (the idempotency key Interlock has to use instead of a run id).
    (found,) = dagster_server.runs(tags=attempt)
    assert (found["runId"], found["status"]) == (run_id, "SUCCESS")
    assert dagster_server.runs(run_ids=[run_id])[0]["runId"] == run_id

    events = dagster_server.run_events(run_id)
    types = [e["eventType"] for e in events]
    assert types[0] == "RUN_ENQUEUED"
    assert types.index("RUN_START") < types.index("RUN_SUCCESS")
    outputs = [e for e in events
               if e["__typename"] == "ExecutionStepOutputEvent" and e["stepKey"] == "score"]
    assert len(outputs) == 1
    assert outputs[0]["outputName"] == "result"
    assert _metadata(outputs[0]["metadataEntries"]) == {"score": 0.42, "rows": 5}
    logs = [e["message"] for e in events if e["__typename"] == "LogMessageEvent"]
    assert any(m.startswith("score input: {'rows': 5, 'customers': ['c0'") for m in logs)
    assert "extract rows=5" in logs
    print(f"interlock_ok_job: launch to SUCCESS in {elapsed:.1f}s")

    # Dagster itself does not deduplicate: the same tags again give a second run.
    again = dagster_server.launch("interlock_ok_job", OK_CONFIG, tags=attempt)
    assert again != run_id
    assert dagster_server.wait_run(again, timeout=120) == "SUCCESS"
    assert {r["runId"] for r in dagster_server.runs(tags=attempt)} == {run_id, again}


def test_fail_job_ends_failure_with_the_error(dagster_server: DagsterServer) -> None:
    run_id = dagster_server.launch("interlock_fail_job")
    assert dagster_server.wait_run(run_id, timeout=120) == "FAILURE"

    events = dagster_server.run_events(run_id)
    assert any(e["eventType"] == "STEP_SUCCESS" and e["stepKey"] == "prepare" for e in events)
    (failure,) = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    assert failure["stepKey"] == "explode"
    assert failure["level"] == "ERROR"
    assert failure["errorSource"] == "USER_CODE_ERROR"
    # The op's own exception is the cause of Dagster's wrapper error.
    assert failure["error"]["className"] == "DagsterExecutionStepExecutionError"
    assert failure["error"]["cause"] == {"message": "ValueError: risk model unavailable\n",
                                         "className": "ValueError"}
    (run_failure,) = [e for e in events if e["__typename"] == "RunFailureEvent"]
    assert "Steps failed: ['explode']" in run_failure["message"]
    assert dagster_server.runs(run_ids=[run_id], statuses=["FAILURE"])[0]["runId"] == run_id


def test_runless_materialization_of_an_external_asset(dagster_server: DagsterServer) -> None:
    marker = f"screened by interlock flow {uuid.uuid4().hex[:8]}"
    answer = dagster_server.report_runless_materialization(SANCTIONS, description=marker)
    assert answer == {"__typename": "ReportRunlessAssetEventsSuccess",
                      "assetKey": {"path": SANCTIONS}}
    latest = dagster_server.asset_materializations(SANCTIONS)[0]
    assert latest["description"] == marker
    assert latest["runId"] == ""  # runless
    assert latest["metadataEntries"] == []  # the GraphQL mutation takes no metadata

    # The webserver's REST endpoint takes metadata and a data version.
    dagster_server.report_materialization(
        SANCTIONS, metadata={"hits": 2, "source": "airflow/interlock_ok", "ratio": 0.5},
        description=f"{marker} (rest)", data_version="v7")
    latest = dagster_server.asset_materializations(SANCTIONS)[0]
    assert latest["description"] == f"{marker} (rest)"
    assert _metadata(latest["metadataEntries"]) == {
        "hits": 2, "source": "airflow/interlock_ok", "ratio": 0.5}
    assert _tags(latest)["dagster/data_version"] == "v7"


def test_asset_job_materializes_with_metadata(dagster_server: DagsterServer) -> None:
    run_id = dagster_server.launch("customers_assets_job")
    assert dagster_server.wait_run(run_id, timeout=120) == "SUCCESS"
    materialized = {
        "/".join(e["assetKey"]["path"]): _metadata(e["metadataEntries"])
        for e in dagster_server.run_events(run_id) if e["__typename"] == "MaterializationEvent"
    }
    assert materialized == {"raw_customers": {"rows": 3}, "customer_scores": {"score": 0.42}}
    latest = dagster_server.asset_materializations(["raw_customers"])[0]
    assert (latest["runId"], latest["stepKey"]) == (run_id, "raw_customers")
    assert _metadata(latest["metadataEntries"]) == {"rows": 3}


def test_flaky_job_succeeds_when_reexecuted_from_failure(dagster_server: DagsterServer) -> None:
    first = dagster_server.launch("interlock_flaky_job")
    assert dagster_server.wait_run(first, timeout=120) == "FAILURE"

    retry = dagster_server.reexecute(first, strategy="FROM_FAILURE")
    assert dagster_server.wait_run(retry, timeout=120) == "SUCCESS"
    run = dagster_server.run(retry)
    assert (run["parentRunId"], run["rootRunId"]) == (first, first)
    assert run["stepKeysToExecute"] == ["flaky"]
    assert _tags(run).items() >= {"dagster/is_resume_retry": "true",
                                  "dagster/parent_run_id": first,
                                  "dagster/root_run_id": first}.items()
    steps = {e["stepKey"] for e in dagster_server.run_events(retry) if e["stepKey"]}
    assert steps == {"flaky"}  # `setup` is not run again: its output comes from `first`


def test_flaky_job_with_a_marker_fails_once(dagster_server: DagsterServer,
                                            tmp_path: Path) -> None:
    config = {"ops": {"flaky": {"config": {"marker": str(tmp_path / "flaky.marker")}}}}
    first = dagster_server.launch("interlock_flaky_job", config)
    assert dagster_server.wait_run(first, timeout=120) == "FAILURE"
    assert (tmp_path / "flaky.marker").read_text() == first
    second = dagster_server.launch("interlock_flaky_job", config)
    assert dagster_server.wait_run(second, timeout=120) == "SUCCESS"


def test_terminate_a_running_slow_job(dagster_server: DagsterServer) -> None:
    run_id = dagster_server.launch("interlock_slow_job",
                                   {"ops": {"nap": {"config": {"seconds": 120}}}})
    _wait_status(dagster_server, run_id, "STARTED")
    answer = dagster_server.terminate(run_id)
    assert answer["__typename"] == "TerminateRunSuccess"
    assert answer["run"]["runId"] == run_id
    assert dagster_server.wait_run(run_id, timeout=60) == "CANCELED"
    types = [e["eventType"] for e in dagster_server.run_events(run_id)]
    assert "RUN_CANCELING" in types and "RUN_CANCELED" in types


def test_stop_and_start_keep_the_run_history(dagster_server: DagsterServer) -> None:
    run_id = dagster_server.launch("interlock_ok_job", OK_CONFIG, tags={"before": "restart"})
    assert dagster_server.wait_run(run_id, timeout=120) == "SUCCESS"
    dagster_server.report_materialization(SANCTIONS, metadata={"hits": 9},
                                          description="before restart")
    url, home, old_pid = dagster_server.url, dagster_server.home, dagster_server.pid

    dagster_server.stop()
    assert dagster_server.pid is None
    assert session_pids(old_pid) == []  # every process of that dagster dev is gone
    with pytest.raises(httpx.ConnectError):  # what "Dagster is down" looks like to a client
        dagster_server.graphql("{ version }")

    started = time.monotonic()
    dagster_server.start()
    dagster_server.wait_healthy(180)
    print(f"restart to healthy in {time.monotonic() - started:.1f}s")
    assert (dagster_server.url, dagster_server.home) == (url, home)
    assert dagster_server.pid != old_pid

    (run,) = dagster_server.runs(run_ids=[run_id])
    assert run["status"] == "SUCCESS"
    assert _tags(run)["before"] == "restart"
    assert len(dagster_server.runs(job_name="interlock_ok_job")) >= 3  # this module's runs
    latest = dagster_server.asset_materializations(SANCTIONS)[0]
    assert latest["description"] == "before restart"
    assert _metadata(latest["metadataEntries"]) == {"hits": 9}
    assert json.loads(json.dumps(latest))  # plain JSON all the way

    again = dagster_server.launch("interlock_ok_job", OK_CONFIG)
    assert dagster_server.wait_run(again, timeout=120) == "SUCCESS"
