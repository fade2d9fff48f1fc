"""Pushed events through the API: signatures, external runs, `after:` triggers, the audit."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.events import intake
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, ExternalRun

SECRET = "test-secret-" + uuid.uuid4().hex
API = "/api/v1"

AFTER_FLOW = dedent("""
    id: after-ingest
    namespace: tests.events
    triggers:
      - after: {system: airflow/test, dag_id: ingest_customers, state: success}
    nodes:
      report: {uses: noop, with: {v: 1}}
""").lstrip()


@pytest.fixture
def client(embedded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          airflow/test:
            url: http://127.0.0.1:9
            events_secret: {env: TEST_EVENTS_SECRET}
          airflow/nosecret:
            url: http://127.0.0.1:9
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("TEST_EVENTS_SECRET", SECRET)
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        assert c.post(f"{API}/flows", json={"source": AFTER_FLOW}).status_code == 201
        yield c


def _event(state: str = "success", run_id: str = "scheduled__2026-11-24", **extra: Any) -> dict[
        str, Any]:
    return {"event_id": uuid.uuid4().hex, "system": "airflow/test", "kind": "dag_run",
            "state": state, "dag_id": "ingest_customers", "run_id": run_id,
            "run_type": "scheduled", "start_date": "2026-11-24T06:00:00+00:00",
            "end_date": "2026-11-24T06:01:00+00:00" if state != "running" else None,
            "conf": {}, **extra}


def _post(client: TestClient, payload: dict[str, Any], *, secret: str = SECRET) -> Any:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **signing.sign(secret, body)}
    return client.post(f"{API}/events/airflow", content=body, headers=headers)


def _audit(action: audit.Action) -> list[AuditRecord]:
    with session_scope() as session:
        return list(session.scalars(select(AuditRecord).where(
            AuditRecord.action == action.value).order_by(AuditRecord.seq)))


def test_a_foreign_dag_run_finishing_starts_the_flow_once(client: TestClient) -> None:
    assert _post(client, _event("running")).json()["triggered_runs"] == []
    first = _post(client, _event("success"))
    assert first.status_code == 202, first.text
    (run_id,) = first.json()["triggered_runs"]
    again = _post(client, _event("success"))  # the same run reported twice: no second run
    assert again.json()["triggered_runs"] == []
    assert wait_run(run_id).state == "succeeded"
    run = client.get(f"{API}/runs/{run_id}").json()
    assert run["trigger"] == {"type": "after", "system": "airflow/test",
                              "job_id": "ingest_customers",
                              "external_id": "scheduled__2026-11-24", "state": "succeeded",
                              "remote_status": "success", "run_type": "scheduled"}
    with session_scope() as session:
        ext = session.scalar(select(ExternalRun))
        assert ext is not None
        assert (ext.state, ext.remote_status, ext.attempt_id) == ("succeeded", "success", None)
    assert len(_audit(audit.Action.TRIGGER_FIRED)) == 1
    assert len(_audit(audit.Action.EVENT_ACCEPTED)) == 3


def test_a_failed_run_or_another_dag_does_not_fire(client: TestClient) -> None:
    assert _post(client, _event("failed", run_id="r1")).json()["triggered_runs"] == []
    other = _event("success", run_id="r2", dag_id="some_other_dag")
    assert _post(client, other).json()["triggered_runs"] == []


def test_a_late_running_event_does_not_reopen_a_finished_run(client: TestClient) -> None:
    _post(client, _event("success", run_id="r3"))
    _post(client, _event("running", run_id="r3"))
    with session_scope() as session:
        ext = session.scalar(select(ExternalRun).where(ExternalRun.external_id == "r3"))
        assert ext is not None and ext.state == "succeeded"


@pytest.mark.parametrize(("payload", "secret", "status", "reason"), [
    (_event(), "wrong-secret", 401, "signature does not match"),
    ({**_event(), "system": "airflow/unknown"}, SECRET, 401, "unknown system"),
    ({**_event(), "system": "airflow/nosecret"}, SECRET, 401, "no `events_secret`"),
    ({**_event(), "state": "exploded"}, SECRET, 422, "`state`"),
    ({**_event(), "run_id": ""}, SECRET, 422, "`run_id`"),
])
def test_bad_events_are_refused_recorded_and_ignored(client: TestClient, payload: dict[str, Any],
                                                     secret: str, status: int,
                                                     reason: str) -> None:
    resp = _post(client, payload, secret=secret)
    assert resp.status_code == status
    # A 401 says one fixed sentence; the reason is in the audit record (and the log).
    assert reason in resp.json()["detail"] if status != 401 else \
        resp.json()["detail"] == intake.REFUSED
    (refused,) = _audit(audit.Action.EVENT_REFUSED)
    assert refused.after is not None and reason in refused.after["reason"]
    if status == 401:
        assert refused.actor == f"unverified:{payload['system']}"
    with session_scope() as session:
        assert session.scalar(select(ExternalRun)) is None
    assert _audit(audit.Action.TRIGGER_FIRED) == []


def test_unsigned_and_non_json_bodies_are_refused(client: TestClient) -> None:
    plain = client.post(f"{API}/events/airflow", json=_event())
    assert plain.status_code == 401 and plain.json()["detail"] == intake.REFUSED
    junk = client.post(f"{API}/events/airflow", content=b"\xff not json")
    assert junk.status_code == 422
    assert len(_audit(audit.Action.EVENT_REFUSED)) == 2
