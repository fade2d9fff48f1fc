"""Airflow's human-in-the-loop requests through the adapter SDK (`foreign_approvals`,
`foreign_approval`, `answer_approval`), against the session's real Airflow 3.3.2.

`interlock_approval` asks two questions at once (`approve`, `choose`) and then `record`s the
answers. The session's Airflow makes everyone an admin: the adapter, which has no login
there, answers as Airflow's "Anonymous"; the second person is `reviewer`, with a token the
harness gives (`AirflowServer.token_for`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from airflow_flows import SECRET_ENV, write_systems
from airflow_harness import AirflowServer, EventReceiver
from interlock_airflow.hitl import SETTLE_SECONDS
from urllib3.util import parse_url

from interlock.adapters import Adapter, Conflict, ForeignApproval, Rejected, Transient, clock
from interlock.adapters.registry import default_registry

pytestmark = pytest.mark.timeout(300)

DAG = "interlock_approval"
REGIONS = ("eu-west", "us-east", "ap-south")
ASSIGNED = ("interlock", "reviewer")  # the DAG's assigned_users (ids)
REVIEWER = "reviewer"
ANONYMOUS = "Anonymous"  # who everyone is to Airflow's simple auth manager in all-admins mode
POLL = 0.3


@pytest.fixture
def airflow(airflow_server: AirflowServer, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Adapter:
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(write_systems(tmp_path, airflow_server)))
    monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
    return default_registry().get("airflow")


@pytest.fixture
def requests_sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(method, path and query) of every request the adapter's API client sends: a spy on
    urllib3, the requests still go to Airflow."""
    sent: list[tuple[str, str]] = []
    real = urllib3.PoolManager.urlopen

    def spy(self: urllib3.PoolManager, method: str, url: str, *args: Any, **kw: Any) -> Any:
        sent.append((method, parse_url(url).request_uri))
        return real(self, method, url, *args, **kw)

    monkeypatch.setattr(urllib3.PoolManager, "urlopen", spy)
    return sent


@pytest.fixture
def approval_run(airflow_server: AirflowServer) -> Iterator[str]:
    """A run of the approval DAG; failed at the end if a test left it waiting."""
    run_id = airflow_server.trigger(DAG)["dag_run_id"]
    yield run_id
    if airflow_server.dag_run(DAG, run_id)["state"] not in ("success", "failed"):
        airflow_server.call("PATCH", f"/api/v2/dags/{DAG}/dagRuns/{run_id}",
                            json={"state": "failed"})


def wait_pending(airflow: Adapter, system: str, run_id: str,
                 timeout: float = 120.0) -> dict[str, ForeignApproval]:
    """The run's two pending requests by task id, once both are there (an inbox poller
    retries what is `Transient`: an Airflow just started can be slow to answer)."""
    deadline = time.monotonic() + timeout
    found: dict[str, ForeignApproval] = {}
    while True:
        with contextlib.suppress(Transient):
            found = {a.task: a for a in airflow.foreign_approvals(system)
                     if a.external_id == run_id}
        if len(found) == 2:
            return found
        assert time.monotonic() < deadline, f"pending requests of {run_id}: {sorted(found)}"
        time.sleep(POLL)


def answer_when_settled(airflow: Adapter, system: str, ref: str, chosen: list[str],
                        params_input: dict[str, Any], timeout: float = 30.0) -> ForeignApproval:
    """`answer_approval`, retried while it is `Transient` (a request seconds old is)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return airflow.answer_approval(system, ref, chosen=chosen, params_input=params_input)
        except Transient:
            assert time.monotonic() < deadline, f"{ref} not answerable after {timeout}s"
            time.sleep(POLL)


def test_a_request_is_listed_answered_once_and_releases_the_dag(
        airflow: Adapter, airflow_server: AirflowServer, airflow_events: EventReceiver,
        approval_run: str) -> None:
    """(`airflow_events` listens where the tasks' listeners post, as Interlock would: a task
    that parks to wait then exits at once.)"""
    system, run_id = airflow_server.system, approval_run
    assert type(airflow).has_approvals()
    pending = wait_pending(airflow, system, run_id)
    choose, approve = pending["choose"], pending["approve"]

    assert (choose.job_id, choose.external_id) == (DAG, run_id)
    assert choose.subject == "Which region publishes first?"
    assert choose.body == "Pick one region."
    assert choose.options == REGIONS and choose.defaults == ("eu-west",)
    assert not choose.multiple and not choose.responded and choose.responded_by is None
    assert choose.params["note"]["value"] == "none"
    assert choose.assigned == ASSIGNED and choose.created_at.tzinfo is not None
    assert approve.options == ("Approve", "Reject")
    assert approve.subject == f"Release the screening results of {run_id}?"  # rendered
    # the fields a deep link is made of lead to the waiting task in Airflow's UI
    assert airflow.run_link(airflow_server.url, choose.job_id, choose.external_id,
                            task_id=choose.task) == \
        f"{airflow_server.url}/dags/{DAG}/runs/{run_id}/tasks/choose"
    assert airflow.foreign_approval(system, choose.ref) == choose  # the ref reads it back

    answered = answer_when_settled(airflow, system, choose.ref, ["us-east"],
                                   {"note": "from interlock"})
    assert answered.responded and answered.chosen == ("us-east",)
    assert answered.params_input == {"note": "from interlock"}
    assert answered.responded_by == ANONYMOUS and answered.responded_at is not None
    assert (answered.subject, answered.ref) == (choose.subject, choose.ref)
    with pytest.raises(Conflict):  # Airflow's 409: one answer per request
        airflow.answer_approval(system, choose.ref, chosen=["eu-west"], params_input={})
    with pytest.raises(Rejected, match="400"):  # not an option it offers
        airflow.answer_approval(system, approve.ref, chosen=["Maybe"], params_input={})
    still = {a.ref for a in airflow.foreign_approvals(system) if a.external_id == run_id}
    assert still == {approve.ref}

    # Someone else answers in Airflow itself: Interlock sees who, and that it is closed.
    # (Not before Airflow has settled the request, as the adapter waits too: hitl.py.)
    time.sleep(max(0.0, SETTLE_SECONDS - (clock.now() - approve.created_at).total_seconds()))
    token = airflow_server.token_for(REVIEWER)
    response = airflow_server.api(
        "PATCH", f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
        json={"chosen_options": ["Approve"], "params_input": {}},
        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    seen = airflow.foreign_approval(system, approve.ref)
    assert seen is not None and seen.responded and seen.chosen == ("Approve",)
    assert seen.responded_by == REVIEWER
    with pytest.raises(Conflict):
        airflow.answer_approval(system, approve.ref, chosen=["Reject"], params_input={})

    assert airflow_server.wait_dag_run(DAG, run_id, timeout=120, poll=POLL) == "success"
    recorded = airflow_server.get_json(f"/api/v2/dags/{DAG}/dagRuns/{run_id}/taskInstances/"
                                       "record/xcomEntries/return_value")["value"]
    assert recorded == {"approved": ["Approve"], "region": ["us-east"],
                        "note": "from interlock"}


HOSTILE_REFS = [
    "", "x" * 10_000, "../../../monitor/health", f"{DAG}/../choose/-1",
    f"{DAG}/%2E%2E/choose/-1", f"{DAG}/run/choose/-1/extra", f"{DAG}/run/choose",
    f"{DAG}/run/choose/01", f"{DAG}/run/choose/-2", f"{DAG}/run/choose/1e3",
    f"{DAG}/run/ch%2Foose/-1", "..%2F..%2Fmonitor/run/choose/-1", f"{DAG}/a%00b/choose/-1",
    f"{DAG}/%ff%fe/choose/-1", "~/~/choose/-1", f"{DAG}/run/choose/-1%0A",
    f"{DAG}/r%75n/choose/-1",  # a needless escape: not the one spelling of this request
    f"{DAG}/run/choose\n/-1", None, 42,
]


@pytest.mark.parametrize("ref", HOSTILE_REFS, ids=range(len(HOSTILE_REFS)))
def test_a_hostile_ref_is_rejected_before_any_request(
        airflow: Adapter, airflow_server: AirflowServer, requests_sent: list[tuple[str, str]],
        ref: Any) -> None:
    system = airflow_server.system
    with pytest.raises(Rejected, match="not an Airflow approval ref"):
        airflow.foreign_approval(system, ref)
    with pytest.raises(Rejected, match="not an Airflow approval ref"):
        airflow.answer_approval(system, ref, chosen=["Approve"], params_input={})
    assert requests_sent == []


def test_a_run_id_shaped_like_a_path_stays_one_path_segment(
        airflow: Adapter, airflow_server: AirflowServer,
        requests_sent: list[tuple[str, str]]) -> None:
    """Run ids may hold `/`: percent-encoded, it stays one segment and Airflow finds no such
    request (404: None), nor is any answer sent."""
    system = airflow_server.system
    ref = f"{DAG}/..%2F..%2F..%2F..%2Fmonitor%2Fhealth/choose/-1"
    assert airflow.foreign_approval(system, ref) is None
    with pytest.raises(Rejected, match="no approval request"):
        airflow.answer_approval(system, ref, chosen=["eu-west"], params_input={})
    path = (f"/api/v2/dags/{DAG}/dagRuns/..%2F..%2F..%2F..%2Fmonitor%2Fhealth"
            "/taskInstances/choose/-1/hitlDetails")
    assert requests_sent == [("GET", path), ("GET", path)]
