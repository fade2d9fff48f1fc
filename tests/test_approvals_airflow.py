"""One inbox across tools, against the session's real Airflow 3.3.2: the `interlock_approval`
DAG's two human-in-the-loop requests appear in Interlock's inbox; a two-person rule answered
through Interlock releases the DAG with the chosen option; the other request, answered in
Airflow by another user, closes in Interlock and is audited as a foreign action."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from airflow_flows import SECRET_ENV, write_systems
from airflow_harness import AirflowServer, EventReceiver

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.access.principals import Forbidden, Principal
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import approvals as approval_ops
from interlock.operations.runtime import periodic_jobs
from interlock.store.approvals import RequestFilter
from interlock.store.db import session_scope
from interlock.store.tables import ApprovalOrigin, ApprovalRequest, AuditRecord

pytestmark = pytest.mark.timeout(300)
DAG = "interlock_approval"
NS = "bank.airflow"
REVIEWER = "reviewer"


@pytest.fixture
def inbox(airflow_server: AirflowServer, sqlite_store: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Any:
    """Interlock with the Airflow system feeding its inbox (two-person rule), its periodic
    jobs running every second in an embedded dispatcher."""
    path = write_systems(tmp_path, airflow_server)
    path.write_text(path.read_text() + (
        f"    approvals:\n      namespace: {NS}\n"
        "      rules: [{group: compliance}, {group: risk}]\n      reject_options: [Reject]\n"))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))
    monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
    monkeypatch.setenv("INTERLOCK_APPROVALS_SYNC_SECONDS", "1")
    from interlock.config.env import settings
    settings.cache_clear()
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


def person(name: str, *groups: str) -> Principal:
    with session_scope() as session:
        token, _ = tokens.create(session, name=name, role=Role.APPROVER, namespace=NS,
                                 created_by="tests", groups=groups)
        principal, _ = tokens.authenticate(session, token)
    return principal


def in_inbox(run_id: str, timeout: float = 120) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = {r["details"]["task"]: r for r in (
            approval_ops.get_request(s["id"]) for s in approval_ops.list_requests(
                filters=RequestFilter(origin=ApprovalOrigin.FOREIGN)))
            if r["details"]["run"] == run_id}
        if len(found) == 2:
            return found
        assert time.monotonic() < deadline, f"inbox for {run_id}: {sorted(found)}"
        time.sleep(0.2)


def wait_state(request_id: str, state: str, key: str | None = None,
               timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown = approval_ops.get_request(request_id)
        if shown["state"] == state and (key is None or shown["details"].get(key)):
            return shown
        assert time.monotonic() < deadline, f"{request_id}: {shown['state']} {shown['details']}"
        time.sleep(0.2)


def test_airflow_requests_in_the_inbox_under_interlocks_rules(
        inbox: EmbeddedDispatcher, airflow_server: AirflowServer,
        airflow_events: EventReceiver) -> None:
    run_id = airflow_server.trigger(DAG)["dag_run_id"]
    found = in_inbox(run_id)
    approve, choose = found["approve"], found["choose"]
    with session_scope() as session:
        rows = {r.id: r for r in session.query(ApprovalRequest).filter(
            ApprovalRequest.id.in_([approve["id"], choose["id"]]))}
    assert approve["options"] == ["Approve", "Reject"] and approve["namespace"] == NS
    assert approve["subject"] == f"Release the screening results of {run_id}?"
    assert approve["link"].endswith(f"/dags/{DAG}/runs/{run_id}/tasks/approve")
    # How long from Airflow creating the request to Interlock's inbox holding it.
    print("HITL request -> inbox (s):",
          {t: round((rows[r["id"]].created_at - _foreign_created(airflow_server, run_id, t))
                    .total_seconds(), 2) for t, r in found.items()})

    # Interlock's rules first: one person is not enough, an outsider does not count.
    first = approval_ops.vote(approve["id"], principal=person("cara", "compliance"),
                              option="Approve", inputs={}, comment="ok", dispatcher=inbox)
    assert first["state"] == "pending"
    with pytest.raises(Forbidden):
        approval_ops.vote(approve["id"], principal=person("otto", "marketing"),
                          option="Approve", inputs={}, comment="", dispatcher=inbox)
    assert airflow_server.dag_run(DAG, run_id)["state"] == "running"  # Airflow still waits
    second = approval_ops.vote(approve["id"], principal=person("rick", "risk"),
                               option="Approve", inputs={}, comment="ok", dispatcher=inbox)
    assert second["state"] == "approved"
    sent = wait_state(approve["id"], "approved", key="answered")  # answered in Airflow
    assert sent["details"]["answered"] == "answered"

    # The other request is answered in Airflow itself, by another user.
    token = airflow_server.token_for(REVIEWER)
    answer = airflow_server.api(
        "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/choose/-1/hitlDetails",
        json={"chosen_options": ["ap-south"], "params_input": {"note": "in airflow"}},
        headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    closed = wait_state(choose["id"], "answered")
    assert closed["option"] == "ap-south" and closed["decided_by"] == [
        f"{airflow_server.system}:{REVIEWER}"]
    with session_scope() as session:
        foreign = session.query(AuditRecord).filter(
            AuditRecord.target == f"approvals/{choose['id']}",
            AuditRecord.action == "foreign.action").one()
        assert foreign.actor == f"{airflow_server.system}:{REVIEWER}"

    assert airflow_server.wait_dag_run(DAG, run_id, timeout=120, poll=0.3) == "success"
    recorded = airflow_server.get_json(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/"
                                       "record/xcomEntries/return_value")["value"]
    assert recorded["approved"] == ["Approve"] and recorded["region"] == ["ap-south"]


def _foreign_created(server: AirflowServer, run_id: str, task: str) -> Any:
    from datetime import datetime
    body = server.get_json(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task}/-1/"
                           "hitlDetails")
    return datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
