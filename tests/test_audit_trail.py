"""What the audit trail records (API mutations with their caller, run state changes, in the
same transaction as the change) and how it is read: filters, pages, JSONL export, verify."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from textwrap import dedent

import pytest
from fastapi.testclient import TestClient
from helpers import bearer
from sqlalchemy import select, update
from typer.testing import CliRunner

from interlock.api.main import create_app
from interlock.cli.main import app as cli
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.states import RunState
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, Run
from interlock.store.transitions import set_run_state
from tests.helpers import wait_run

API = "/api/v1"
FLOW = dedent("""
    id: audited
    namespace: tests.audit
    nodes:
      slow: {uses: script, with: {command: "sleep 30"}}
""").lstrip()
QUICK = FLOW.replace("id: audited", "id: quick").replace('"sleep 30"', '"true"')


@pytest.fixture
def client(embedded: EmbeddedDispatcher) -> Iterator[TestClient]:
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        yield c


def _records(**where: str) -> list[AuditRecord]:
    query = select(AuditRecord).order_by(AuditRecord.seq)
    for column, value in where.items():
        query = query.where(getattr(AuditRecord, column) == value)
    with session_scope() as session:
        return list(session.scalars(query))


def _wait_state(run_id: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with session_scope() as session:
            if session.get(Run, run_id).state == state:  # type: ignore[union-attr]
                return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never became {state}")


def test_api_mutations_and_run_changes_are_recorded_with_their_caller(
        client: TestClient) -> None:
    """The actor is the authenticated principal; a header claiming another name is ignored."""
    alice = {**bearer(name="alice"), "X-Interlock-Actor": "mallory"}
    assert client.post(f"{API}/flows", json={"source": FLOW}, headers=alice).status_code == 201
    run = client.post(f"{API}/runs", json={"namespace": "tests.audit", "flow_id": "audited"},
                      headers=alice).json()
    _wait_state(run["id"], "running")
    assert client.post(f"{API}/runs/{run['id']}/cancel", headers=alice).status_code == 202
    wait_run(run["id"])

    (registered,) = _records(action="flow.registered")
    assert (registered.actor, registered.target, registered.origin) == \
        ("user:alice", "flows/tests.audit/audited", "testclient")
    assert registered.after["revision"] == 1
    (created,) = _records(action="run.created")
    assert (created.actor, created.target) == ("user:alice", f"runs/{run['id']}")
    assert created.after["flow"] == "tests.audit/audited"
    changes = [(r.before["state"], r.after["state"], r.actor)
               for r in _records(action="run.state", target=f"runs/{run['id']}")]
    assert changes == [("pending", "running", "planner"),
                       ("running", "cancelling", "user:alice"),
                       ("cancelling", "cancelled", "planner")]
    cancel = _records(action="run.state", actor="user:alice")[0]
    assert cancel.origin == "testclient" and cancel.after["reason"] == "cancel requested"
    # without credentials nothing is done, and nothing is recorded under any name
    before = len(_records())
    anonymous = client.post(f"{API}/flows", json={"source": QUICK},
                            headers={"Authorization": "", "X-Interlock-Actor": "alice"})
    assert anonymous.status_code == 401 and len(_records()) == before


def test_a_change_and_its_record_commit_together_or_not_at_all(
        client: TestClient, embedded: EmbeddedDispatcher) -> None:
    client.post(f"{API}/flows", json={"source": QUICK})
    run_id = client.post(f"{API}/runs", json={"namespace": "tests.audit",
                                              "flow_id": "quick"}).json()["id"]
    wait_run(run_id)
    before = len(_records())
    with pytest.raises(RuntimeError), session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(state="failed"))
        assert set_run_state(session, run_id=run_id, expected=RunState.FAILED,
                             to=RunState.PENDING, actor="test", reason="reopen")
        raise RuntimeError("the transaction fails after the change and its record")
    with session_scope() as session:
        assert session.get(Run, run_id).state == "succeeded"  # type: ignore[union-attr]
    assert len(_records()) == before
    # a compare-and-set that loses changes nothing and records nothing
    with session_scope() as session:
        assert not set_run_state(session, run_id=run_id, expected=RunState.RUNNING,
                                 to=RunState.SUCCEEDED, actor="test")
    assert len(_records()) == before


def _fill(n: int) -> None:
    with session_scope() as session:
        for i in range(n):
            audit.record(session, actor=f"user{i % 3}", action=audit.Action.EVENT_ACCEPTED,
                         target=f"events/t{i % 2}/{i}", after={"i": i}, origin="10.0.0.1")


def test_filters_and_cursor_pages(client: TestClient) -> None:
    _fill(25)
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"actor": "user1", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = client.get(f"{API}/audit", params=params).json()
        seen += [r["seq"] for r in body["records"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = [r.seq for r in reversed(_records(actor="user1"))]
    assert seen == expected and len(seen) == 8          # newest first, no gap, no repeat
    prefixed = client.get(f"{API}/audit", params={"target": "events/t1/*", "limit": 100}).json()
    assert {r["target"].split("/")[1] for r in prefixed["records"]} == {"t1"}
    assert len(prefixed["records"]) == 12
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get(f"{API}/audit", params={"since": future}).json()["records"] == []
    assert client.get(f"{API}/audit", params={"cursor": "nope"}).status_code == 400
    naive = client.get(f"{API}/audit", params={"since": "2026-11-24T10:00:00"})
    assert naive.status_code == 400 and "time zone" in naive.json()["detail"]


def test_the_jsonl_export_rebuilds_the_chain(client: TestClient) -> None:
    _fill(7)
    response = client.get(f"{API}/audit/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [r["seq"] for r in lines] == list(range(1, 8))
    prev = audit.GENESIS
    for r in lines:  # an auditor's own check, from the export alone
        at = datetime.fromisoformat(r["at"])
        assert r["prev_hash"] == prev
        assert r["hash"] == audit._digest(prev, r["seq"], at, r["actor"], r["action"],
                                          r["target"], r["before"], r["after"], r["origin"])
        prev = r["hash"]


def test_verify_by_api_and_cli_names_the_first_broken_record(client: TestClient) -> None:
    _fill(6)
    assert client.get(f"{API}/audit/verify").json() == {
        "ok": True, "checked": 6, "broken_at": None, "reason": None, "archived": 0,
        "anchors": 0}
    runner = CliRunner()
    good = runner.invoke(cli, ["audit", "verify"])
    assert good.exit_code == 0 and "6 record(s)" in good.output
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 4)
                        .values(after={"i": 400}))
    verdict = client.get(f"{API}/audit/verify").json()
    assert (verdict["ok"], verdict["broken_at"], verdict["checked"]) == (False, 4, 3)
    bad = runner.invoke(cli, ["audit", "verify", "--json"])
    assert bad.exit_code == 1 and json.loads(bad.output)["broken_at"] == 4
