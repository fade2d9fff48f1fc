"""The one check every agent scenario ends with (issue 16, "the trail of every scenario is
complete"): the steps the API returns, the spans of the run's trace and the `agent.step`
audit records tell the same story, step by step; a call that waited for people has its
request, votes and decision audited and an approval span inside its tool span; the CLI
renders the tree; and the audit chain verifies (library and `interlock audit verify`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from interlock.api.main import create_app
from interlock.audit import query as audit_query
from interlock.cli.main import app
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord
from tests.helpers import bearer

OPEN_STATES = ("started", "waiting")  # a step not finished: no audit record yet


def assert_trail_complete(run_id: str, *, node: str = "score",
                          kinds: list[str] | None = None,
                          decided: dict[str, str] | None = None,
                          client: TestClient | None = None) -> list[dict[str, Any]]:
    """Check the trail of agent node ``node`` of run ``run_id``; ``kinds`` the step kinds
    expected in order, ``decided`` {request id: its final state}. Returns the API's steps."""
    api = client or TestClient(create_app())
    got = api.get(f"/api/v1/runs/{run_id}/nodes/{node}/agent", headers=bearer())
    assert got.status_code == 200, got.text
    steps = got.json()["steps"]
    assert steps, f"run {run_id} node {node}: no agent step"
    if kinds is not None:
        assert [s["kind"] for s in steps] == kinds
    _check_trace(api, run_id, node, steps)
    _check_audit(run_id, node, steps, decided or {})
    _check_approvals(api, steps, decided or {})
    assert audit_query.verify().ok
    cli = CliRunner()
    tree = cli.invoke(app, ["agent", run_id, node])
    assert tree.exit_code == 0, tree.output
    for step in steps:
        assert f"#{step['attempt']}.{step['seq']} {step['kind']}" in tree.output
    verified = cli.invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    return steps


def _check_trace(api: TestClient, run_id: str, node: str, steps: list[dict[str, Any]]) -> None:
    """One span per step under its attempt, same kind and state; an approval span under
    each tool call that waited, inside it (it starts no earlier, ends no later)."""
    trace = api.get(f"/api/v1/runs/{run_id}/trace", headers=bearer())
    assert trace.status_code == 200, trace.text
    spans = {s["id"]: s for s in trace.json()["spans"]}
    for step in steps:
        span = spans[f"step:{run_id}/{node}/{step['attempt']}/{step['seq']:04d}"]
        assert span["parent_id"] == f"attempt:{run_id}/{node}/{step['attempt']}"
        assert span["parent_id"] in spans
        assert (span["kind"], span["state"], span["approval_id"]) == \
            (step["kind"], step["state"], step["approval_id"])
        assert (span["duration_s"] is not None) == (step["state"] not in OPEN_STATES)
        if step["approval_id"] is None:
            continue
        waited = spans[f"approval:{step['approval_id']}"]
        assert (waited["parent_id"], waited["kind"]) == (span["id"], "approval")
        assert _at(waited["started_at"]) >= _at(span["started_at"])
        if span["finished_at"] and waited["finished_at"]:
            assert _at(waited["finished_at"]) <= _at(span["finished_at"])


def _check_audit(run_id: str, node: str, steps: list[dict[str, Any]],
                 decided: dict[str, str]) -> None:
    """Exactly one `agent.step` record per finished step, with its facts."""
    with session_scope() as session:
        records = list(session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.AGENT_STEP.value,
            AuditRecord.target == f"runs/{run_id}/nodes/{node}").order_by(AuditRecord.seq)))
    audited = sorted((r.after["attempt"], r.after["seq"], r.after["kind"], r.after["state"],
                      r.after["key"]) for r in records)
    finished = sorted((s["attempt"], s["seq"], s["kind"], s["state"], s["idempotency_key"])
                      for s in steps if s["state"] not in OPEN_STATES)
    assert audited == finished
    for record in records:
        approval = record.after.get("approval")
        if approval and approval["id"] in decided:
            assert approval["state"] == decided[approval["id"]]


def _check_approvals(api: TestClient, steps: list[dict[str, Any]],
                     decided: dict[str, str]) -> None:
    """Each request of a step: in the API in its state, requested and decided in the audit."""
    asked = {s["approval_id"] for s in steps if s["approval_id"]}
    assert set(decided) <= asked
    with session_scope() as session:
        records = list(session.scalars(select(AuditRecord).where(
            AuditRecord.target.in_([f"approvals/{a}" for a in asked]))))
    for request_id in asked:
        request = api.get(f"/api/v1/approvals/{request_id}", headers=bearer()).json()
        mine = [r for r in records if r.target == f"approvals/{request_id}"]
        assert any(r.action == audit.Action.APPROVAL_REQUESTED.value for r in mine)
        if request_id in decided:
            assert request["state"] == decided[request_id]
        if request["state"] != "pending":
            assert any(r.action == audit.Action.APPROVAL_STATE.value
                       and r.after["state"] == request["state"] for r in mine)
        if request["votes"]:
            assert any(r.action == audit.Action.APPROVAL_VOTED.value for r in mine)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
