"""The real-Airflow harness and the Interlock listener plugin, end to end (no mocks)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from airflow_harness import (
    TEST_DAGS,
    TEST_TAG,
    UNPAUSED_DAGS,
    AirflowServer,
    EventReceiver,
    signature_ok,
)
from harness_process import session_pids

# The first test to use airflow_server also pays for its start (and, once, the install).
pytestmark = pytest.mark.timeout(600)

TI_KEYS = {"event_id", "system", "kind", "state", "dag_id", "run_id", "task_id", "map_index",
           "try_number", "run_type", "logical_date", "start_date", "end_date", "conf", "error",
           "emitted_at"}
DAG_RUN_KEYS = TI_KEYS - {"task_id", "map_index", "try_number"}


def _run_id(prefix: str) -> str:
    return f"{prefix}__{uuid.uuid4().hex[:10]}"


def _assert_signed(receiver: EventReceiver, secret: str, run_id: str) -> None:
    posts = [p for p in receiver.posts if (p["event"] or {}).get("run_id") == run_id]
    assert posts
    for post in posts:
        headers = {k.lower(): v for k, v in post["headers"].items()}
        assert post["path"] == "/api/v1/events/airflow"
        assert headers["content-type"] == "application/json"
        assert headers["x-interlock-signature"].startswith("sha256=")
        assert abs(int(headers["x-interlock-timestamp"]) - time.time()) < 300
        assert signature_ok(secret, headers["x-interlock-timestamp"],
                            headers["x-interlock-signature"], post["body"])
        assert not signature_ok("wrong-secret", headers["x-interlock-timestamp"],
                                headers["x-interlock-signature"], post["body"])
        assert json.loads(post["body"]) == post["event"]


def test_server_is_healthy_and_lists_the_test_dags(airflow_server: AirflowServer) -> None:
    assert airflow_server.url.startswith("http://127.0.0.1:")
    health = airflow_server.get_json("/api/v2/monitor/health")
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    assert airflow_server.get_json("/api/v2/version")["version"] == "3.3.2"

    dags = airflow_server.get_json("/api/v2/dags", params={"tags": TEST_TAG, "limit": 100})
    by_id = {d["dag_id"]: d for d in dags["dags"]}
    assert set(TEST_DAGS) <= set(by_id)
    for dag_id in UNPAUSED_DAGS:
        assert by_id[dag_id]["is_paused"] is False, dag_id
    assert by_id["interlock_daily"]["is_paused"] is True


def test_listener_pushes_signed_events_for_a_successful_run(
    airflow_server: AirflowServer, airflow_events: EventReceiver
) -> None:
    conf = {"day": "2026-01-02", "nested": {"ids": [1, 2]}}
    run = airflow_server.trigger("interlock_ok", run_id=_run_id("ok"), conf=conf)
    run_id = run["dag_run_id"]
    assert run["state"] == "queued"
    assert airflow_server.wait_dag_run("interlock_ok", run_id, timeout=120) == "success"

    wait = airflow_events.wait_for
    running = wait(kind="dag_run", state="running", run_id=run_id)
    done = wait(kind="dag_run", state="success", run_id=run_id)
    extract = wait(kind="task_instance", state="success", run_id=run_id, task_id="extract")
    screen = wait(kind="task_instance", state="success", run_id=run_id, task_id="screen")
    wait(kind="task_instance", state="running", run_id=run_id, task_id="extract")

    for event in (running, done):
        assert set(event) == DAG_RUN_KEYS
    for event in (extract, screen):
        assert set(event) == TI_KEYS
        assert event["map_index"] == -1
        assert event["try_number"] == 1
        assert event["error"] is None
    for event in (running, done, extract, screen):
        assert event["system"] == airflow_server.system == "airflow/test"
        assert event["dag_id"] == "interlock_ok"
        assert event["run_type"] == "manual"
        assert event["conf"] == conf
        assert event["logical_date"] is None  # manual runs via the API have none in Airflow 3
        assert len(event["event_id"]) == 32
    assert done["end_date"] and done["start_date"]
    event_ids = [e["event_id"] for e in airflow_events.events(run_id=run_id)]
    assert len(event_ids) == len(set(event_ids))
    _assert_signed(airflow_events, airflow_server.events_secret, run_id)

    # The DAG's side of the contract: return values and the echoed conf.
    base = f"/api/v2/dags/interlock_ok/dagRuns/{run_id}/taskInstances"
    xcom = airflow_server.get_json(f"{base}/screen/xcomEntries/return_value")
    assert xcom["value"] == {"hits": 2, "rows": 3}
    xcom = airflow_server.get_json(f"{base}/extract/xcomEntries/return_value")
    assert xcom["value"] == {"rows": 3, "day": "2026-01-02"}
    log = airflow_server.get_json(f"{base}/extract/logs/1")
    lines = [c.get("event", "") for c in log["content"]]
    assert f"interlock_ok conf: {json.dumps(conf, sort_keys=True)}" in lines


def test_listener_pushes_failed_events_with_the_error(
    airflow_server: AirflowServer, airflow_events: EventReceiver
) -> None:
    run_id = airflow_server.trigger("interlock_fail", run_id=_run_id("fail"))["dag_run_id"]
    assert airflow_server.wait_dag_run("interlock_fail", run_id, timeout=120) == "failed"

    wait = airflow_events.wait_for
    wait(kind="task_instance", state="success", run_id=run_id, task_id="prepare")
    failed_ti = wait(kind="task_instance", state="failed", run_id=run_id, task_id="explode")
    failed_run = wait(kind="dag_run", state="failed", run_id=run_id)
    assert "sanctions list unreachable" in failed_ti["error"]
    assert failed_ti["try_number"] == 1
    assert failed_ti["conf"] == {}
    assert failed_run["dag_id"] == "interlock_fail"
    assert failed_run["error"] is None
    assert not airflow_events.events(run_id=run_id, kind="dag_run", state="success")
    _assert_signed(airflow_events, airflow_server.events_secret, run_id)


def test_stop_and_start_keep_dags_and_runs(airflow_server: AirflowServer) -> None:
    run_id = airflow_server.trigger("interlock_ok", run_id=_run_id("before_restart"),
                                    conf={"day": "2026-03-04"})["dag_run_id"]
    assert airflow_server.wait_dag_run("interlock_ok", run_id, timeout=120) == "success"
    url, home, old_pid = airflow_server.url, airflow_server.home, airflow_server.pid

    airflow_server.stop()
    assert airflow_server.pid is None
    assert session_pids(old_pid) == []  # every process of that standalone is gone

    airflow_server.start()
    airflow_server.wait_healthy(240)
    assert (airflow_server.url, airflow_server.home) == (url, home)
    assert airflow_server.pid != old_pid

    runs = airflow_server.get_json("/api/v2/dags/interlock_ok/dagRuns", params={"limit": 100})
    by_id = {r["dag_run_id"]: r for r in runs["dag_runs"]}
    assert by_id[run_id]["state"] == "success"
    assert by_id[run_id]["conf"] == {"day": "2026-03-04"}
    dag = airflow_server.get_json("/api/v2/dags/interlock_ok")
    assert dag["is_paused"] is False  # pause state survives too

    again = airflow_server.trigger("interlock_ok", run_id=_run_id("after_restart"))["dag_run_id"]
    assert airflow_server.wait_dag_run("interlock_ok", again, timeout=120) == "success"
