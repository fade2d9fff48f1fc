"""Every route declares its permission, and the matrix holds for each of them: anonymous
401, wrong role 403, the right role in another namespace 404 (403 for global permissions,
which need a binding on `*`), the right role where the resource lives 2xx."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from textwrap import dedent
from typing import Any

import pytest
from fastapi.routing import APIRoute

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.access.permissions import ROLES, Permission, Role, Scope
from interlock.api.main import create_app
from interlock.api.security import UNAUTHENTICATED, declared

API = "/api/v1"
NS = "finance.eu"
PAY = dedent(f"""
    id: pay
    namespace: {NS}
    nodes:
      send: {{uses: noop, with: {{amount: 3}}}}
""").lstrip()
SLOW = dedent(f"""
    id: slow
    namespace: {NS}
    nodes:
      wait: {{uses: script, with: {{command: ["sleep", "30"]}}, timeout: 1m}}
""").lstrip()
FAIL = dedent(f"""
    id: fail
    namespace: {NS}
    nodes:
      boom: {{uses: script, with: {{command: ["false"]}}}}
""").lstrip()
GATE = dedent(f"""
    id: gate
    namespace: {NS}
    nodes:
      pay:
        uses: noop
        approval: {{subject: pay, rules: [{{role: approver, count: 2}}]}}
""").lstrip()
POLICY = ("policy: {name}\nscope: finance.eu\nmode: report\n"
          "rules: [{{name: r, check: 'true', message: m}}]\n")
ADMIN_ONLY = frozenset({Permission.TOKENS_ADMIN, Permission.POLICIES_ADMIN})
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("POST", f"{API}/events/{{kind}}"),
          ("POST", f"{API}/webhooks/{{namespace}}/{{flow_id}}/{{key}}"),
          ("GET", f"{API}/login/options")}  # what a login page offers: no secret
CONSOLE = {("GET", "/{path:console}")}  # the console's files: public, not in the OpenAPI


@dataclass(frozen=True)
class Case:
    """One route's request and permission; `other` is what the right role bound in another
    namespace gets (None: the default for the permission's scope)."""

    permission: Permission
    request: Callable[[dict[str, str]], tuple[str, str, dict[str, Any]]]
    ok: tuple[int, ...] = (200,)
    other: int | None = None


def api_routes(app: Any) -> list[Any]:
    """Every API route with its effective dependencies (routers are included lazily)."""
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "effective_candidates"):
            found += route.effective_candidates()
    return found


def _open_routes(app: Any) -> set[tuple[str, str]]:
    return {(m, r.path.replace(":path}", "}")) for r in api_routes(app) for m in r.methods}


def _declarations(route: Any) -> list[Any]:
    found, stack = [], list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is not None and (what := declared(dep.call)):
            found.append(what)
        stack.extend(dep.dependencies)
    return found


def test_every_route_declares_exactly_one_permission_or_why_it_is_public() -> None:
    app = create_app(dispatcher=object())  # type: ignore[arg-type]  (no request is served)
    routes = api_routes(app)
    assert len(routes) >= len(CASES) + len(PUBLIC) + len(CONSOLE) - 1  # the walk found them
    undeclared = [r.path for r in routes if len(_declarations(r)) != 1]
    assert undeclared == []
    public = {(m, r.path) for r in routes for m in r.methods
              if not isinstance(_declarations(r)[0], Permission)}
    assert public == PUBLIC | CONSOLE


def test_the_openapi_document_has_no_operation_without_a_route_declaration() -> None:
    app = create_app(dispatcher=object())  # type: ignore[arg-type]
    operations = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    assert operations <= _open_routes(app)
    assert set(CASES) | PUBLIC == operations, "add each new route to CASES"


def _run_path(ids: dict[str, str], tail: str = "") -> str:
    return f"{API}/runs/{ids['done']}{tail}"


CASES: dict[tuple[str, str], Case] = {
    ("POST", f"{API}/flows"): Case(Permission.FLOWS_CREATE, lambda i: (
        "POST", f"{API}/flows", {"json": {"source": PAY}}), ok=(201,)),
    ("POST", f"{API}/flows/validate"): Case(Permission.FLOWS_READ, lambda i: (
        "POST", f"{API}/flows/validate", {"json": {"source": PAY}}), other=200),
    ("GET", f"{API}/flows"): Case(Permission.FLOWS_READ, lambda i: (
        "GET", f"{API}/flows", {}), other=200),
    ("GET", f"{API}/flows/{{namespace}}/{{flow_id}}/revisions"): Case(
        Permission.FLOWS_READ, lambda i: ("GET", f"{API}/flows/{NS}/pay/revisions", {})),
    ("POST", f"{API}/runs"): Case(Permission.RUNS_EXECUTE, lambda i: (
        "POST", f"{API}/runs", {"json": {"namespace": NS, "flow_id": "pay"}}), ok=(201,)),
    ("GET", f"{API}/runs"): Case(Permission.RUNS_READ, lambda i: (
        "GET", f"{API}/runs", {}), other=200),
    ("GET", f"{API}/runs/{{run_id}}"): Case(Permission.RUNS_READ, lambda i: (
        "GET", _run_path(i), {})),
    ("GET", f"{API}/runs/{{run_id}}/events"): Case(Permission.RUNS_READ, lambda i: (
        "GET", _run_path(i, "/events"), {})),
    ("GET", f"{API}/runs/{{run_id}}/trace"): Case(Permission.RUNS_READ, lambda i: (
        "GET", _run_path(i, "/trace"), {})),
    ("GET", f"{API}/runs/{{run_id}}/nodes/{{node_id}}/logs"): Case(
        Permission.LOGS_READ, lambda i: ("GET", _run_path(i, "/nodes/send/logs"), {})),
    # Past the door, a node that ran no agent is 404 (tests/test_agents.py reads a trail).
    ("GET", f"{API}/runs/{{run_id}}/nodes/{{node_id}}/agent"): Case(
        Permission.RUNS_READ, lambda i: ("GET", _run_path(i, "/nodes/send/agent"), {}),
        ok=(404,)),
    ("POST", f"{API}/runs/{{run_id}}/cancel"): Case(Permission.RUNS_CANCEL, lambda i: (
        "POST", f"{API}/runs/{i['slow']}/cancel", {}), ok=(202,)),
    ("POST", f"{API}/runs/{{run_id}}/retry"): Case(Permission.RUNS_RETRY, lambda i: (
        "POST", f"{API}/runs/{i['failed']}/retry", {}), ok=(202,)),
    ("GET", f"{API}/dashboards/runs"): Case(Permission.RUNS_READ, lambda i: (
        "GET", f"{API}/dashboards/runs", {"params": {"namespace": NS}})),
    ("GET", f"{API}/dashboards/flows"): Case(Permission.FLOWS_READ, lambda i: (
        "GET", f"{API}/dashboards/flows", {"params": {"namespace": NS}})),
    ("GET", f"{API}/dashboards/systems"): Case(Permission.SYSTEMS_READ, lambda i: (
        "GET", f"{API}/dashboards/systems", {})),
    ("GET", "/metrics"): Case(Permission.SYSTEMS_READ, lambda i: ("GET", "/metrics", {})),
    ("GET", f"{API}/cron/jobs"): Case(Permission.SYSTEMS_READ, lambda i: (
        "GET", f"{API}/cron/jobs", {})),
    # No cron job is mapped here: passing the door shows as the job's own 404.
    ("GET", f"{API}/cron/jobs/{{host}}/{{job}}/checks"): Case(
        Permission.SYSTEMS_READ, lambda i: ("GET", f"{API}/cron/jobs/db1/backup/checks", {}),
        ok=(404,)),
    ("GET", f"{API}/audit"): Case(Permission.AUDIT_READ, lambda i: ("GET", f"{API}/audit", {})),
    ("GET", f"{API}/audit/export"): Case(Permission.AUDIT_READ, lambda i: (
        "GET", f"{API}/audit/export", {})),
    ("GET", f"{API}/audit/verify"): Case(Permission.AUDIT_READ, lambda i: (
        "GET", f"{API}/audit/verify", {})),
    ("POST", f"{API}/lineage"): Case(Permission.LINEAGE_CREATE, lambda i: (
        "POST", f"{API}/lineage", {"json": i["event"]}), ok=(201,)),
    ("GET", f"{API}/lineage"): Case(Permission.LINEAGE_READ, lambda i: (
        "GET", f"{API}/lineage", {"params": {"nodeId": "job:prod:ingest"}})),
    ("GET", f"{API}/lineage/impact"): Case(Permission.LINEAGE_READ, lambda i: (
        "GET", f"{API}/lineage/impact", {"params": {"nodeId": "job:prod:ingest"}})),
    ("GET", f"{API}/lineage/nodes"): Case(Permission.LINEAGE_READ, lambda i: (
        "GET", f"{API}/lineage/nodes", {"params": {"q": "ingest"}})),
    ("GET", f"{API}/lineage/datasets/{{dataset}}"): Case(Permission.LINEAGE_READ, lambda i: (
        "GET", f"{API}/lineage/datasets/s3%3A%2F%2Fb/orders/history", {})),
    ("GET", f"{API}/policies"): Case(Permission.FLOWS_READ, lambda i: (
        "GET", f"{API}/policies", {"params": {"namespace": NS}})),
    ("POST", f"{API}/policies/validate"): Case(Permission.FLOWS_READ, lambda i: (
        "POST", f"{API}/policies/validate",
        {"json": {"source": "policy: p\nrules: [{name: r, check: 'true', message: m}]\n"}}),
        other=200),
    ("PUT", f"{API}/policies/{{name}}"): Case(Permission.POLICIES_ADMIN, lambda i: (
        "PUT", f"{API}/policies/matrix", {"json": {"source": POLICY.format(name="matrix")}})),
    ("DELETE", f"{API}/policies/{{name}}"): Case(Permission.POLICIES_ADMIN, lambda i: (
        "DELETE", f"{API}/policies/deletable", {}), ok=(204,)),
    ("GET", f"{API}/approvals"): Case(Permission.APPROVALS_READ, lambda i: (
        "GET", f"{API}/approvals", {}), other=200),
    ("GET", f"{API}/approvals/{{request_id}}"): Case(Permission.APPROVALS_READ, lambda i: (
        "GET", f"{API}/approvals/{i['request']}", {})),
    # Two approvers are needed, so the one allowed vote leaves the request open.
    ("POST", f"{API}/approvals/{{request_id}}/votes"): Case(
        Permission.APPROVALS_APPROVE, lambda i: (
            "POST", f"{API}/approvals/{i['request']}/votes",
            {"json": {"option": "approve", "comment": "matrix"}})),
    ("POST", f"{API}/tokens"): Case(Permission.TOKENS_ADMIN, lambda i: (
        "POST", f"{API}/tokens", {"json": {"name": f"made-{time.monotonic_ns()}",
                                           "role": "viewer", "namespace": NS}}), ok=(201,)),
    ("GET", f"{API}/tokens"): Case(Permission.TOKENS_ADMIN, lambda i: (
        "GET", f"{API}/tokens", {})),
    ("POST", f"{API}/tokens/{{name}}/revoke"): Case(Permission.TOKENS_ADMIN, lambda i: (
        "POST", f"{API}/tokens/revocable/revoke", {})),
    ("GET", f"{API}/me"): Case(Permission.RUNS_READ, lambda i: ("GET", f"{API}/me", {}),
                               other=200),
    # Event streams: the matrix reads the first bytes, then closes them.
    ("GET", f"{API}/stream/runs"): Case(Permission.RUNS_READ, lambda i: (
        "GET", f"{API}/stream/runs", {}), other=200),
    ("GET", f"{API}/stream/runs/{{run_id}}"): Case(Permission.RUNS_READ, lambda i: (
        "GET", _run_path(i).replace("/runs/", "/stream/runs/"), {})),
    ("GET", f"{API}/stream/approvals"): Case(Permission.APPROVALS_READ, lambda i: (
        "GET", f"{API}/stream/approvals", {"params": {"mine": "true"}}), other=200),
}


def _event() -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": "2026-11-30T10:00:00Z",
            "producer": "https://example.com/tests", "schemaURL":
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "0191f3a4-7a7e-7cc1-a2a5-9d1a33d2f6a1"},
            "job": {"namespace": "prod", "name": "ingest"},
            "inputs": [], "outputs": [{"namespace": "s3://b", "name": "orders"}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """One store for the whole matrix: a finished, a failed and a running run in NS."""
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("access")
    mp.setenv("INTERLOCK_HOME", str(home))
    mp.setenv("INTERLOCK_DATABASE_URL", f"sqlite:///{home / 'interlock.db'}")
    mp.setenv("INTERLOCK_POLICIES", str(home / "policies"))
    mp.delenv("INTERLOCK_BROKER_URL", raising=False)
    mp.delenv("INTERLOCK_AUTH", raising=False)
    from interlock.config.env import settings
    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.store.db import dispose_all
    settings.cache_clear()
    dispatcher = EmbeddedDispatcher()
    with TestClient(create_app(dispatcher=dispatcher), raise_server_exceptions=False) as c:
        admin = bearer(name="matrix-admin")
        bearer(Role.VIEWER, NS, name="revocable")  # for the matrix's revoke
        ids: dict[str, Any] = {"event": _event()}
        for source in (PAY, SLOW, FAIL, GATE):
            assert c.post(f"{API}/flows", json={"source": source}, headers=admin).status_code \
                == 201
        for key, flow in (("done", "pay"), ("failed", "fail")):
            ids[key] = c.post(f"{API}/runs", json={"namespace": NS, "flow_id": flow},
                              headers=admin).json()["id"]
            wait_run(ids[key])
        assert c.post(f"{API}/lineage", json=ids["event"], headers=admin).status_code == 201
        gated = c.post(f"{API}/runs", json={"namespace": NS, "flow_id": "gate"},
                       headers=admin).json()["id"]
        ids["request"] = _request_of(c, gated, admin)
        assert c.put(f"{API}/policies/deletable", headers=admin,
                     json={"source": POLICY.format(name="deletable")}).status_code == 200
        yield c, ids
    dispatcher.close()
    dispose_all()
    settings.cache_clear()
    mp.undo()


def _request_of(client: TestClient, run_id: str, headers: dict[str, str]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = client.get(f"{API}/approvals", params={"run_id": run_id}, headers=headers)
        if found.json():
            return str(found.json()[0]["id"])
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} asked for no approval")


def _slow_run(client: TestClient, ids: dict[str, Any]) -> None:
    """A fresh running run for each cancel (a cancelled one answers 409)."""
    admin = bearer(name=f"slow-{time.monotonic_ns()}")
    ids["slow"] = client.post(f"{API}/runs", json={"namespace": NS, "flow_id": "slow"},
                              headers=admin).json()["id"]


def _wrong_role(permission: Permission) -> Role:
    return next(r for r in (Role.PRODUCER, Role.VIEWER) if permission not in ROLES[r])


def _right_role(permission: Permission) -> Role:
    return next(r for r in Role if permission in ROLES[r] and r is not Role.ADMIN) \
        if permission not in ADMIN_ONLY else Role.ADMIN


@pytest.mark.parametrize("route", sorted(CASES), ids=lambda r: f"{r[0]} {r[1]}")
def test_the_matrix(world: tuple[TestClient, dict[str, Any]], route: tuple[str, str]) -> None:
    client, ids = world
    case = CASES[route]
    glob = case.permission.scope is Scope.GLOBAL
    right_here = "*" if glob else NS
    callers = {
        "anonymous": ({}, (401,)),
        "wrong role": (bearer(_wrong_role(case.permission), right_here), (403,)),
        "right role elsewhere": (bearer(_right_role(case.permission), "other.*"),
                                 (case.other or (403 if glob else 404),)),
        "right role here": (bearer(_right_role(case.permission), right_here), case.ok),
    }
    for who, (headers, expected) in callers.items():
        if route[1].endswith("/cancel"):
            _slow_run(client, ids)
        method, path, kwargs = case.request(ids)
        status, body = _call(client, method, path, {"Authorization": "", **headers}, kwargs)
        assert status in expected, f"{who}: {status} {body[:300]}"
        if who == "anonymous":
            assert json.loads(body) == {"detail": UNAUTHENTICATED}


def _call(client: TestClient, method: str, path: str, headers: dict[str, str],
          kwargs: dict[str, Any]) -> tuple[int, str]:
    """Status and body; an event stream that opened is closed after its first bytes."""
    with client.stream(method, path, headers=headers, **kwargs) as resp:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            return resp.status_code, next(resp.iter_text())
        return resp.status_code, resp.read().decode()


def test_lists_are_filtered_to_what_the_caller_may_read(
        world: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = world
    here, elsewhere = bearer(Role.VIEWER, "finance.*"), bearer(Role.VIEWER, "other.*")
    assert ids["done"] in {r["id"] for r in client.get(f"{API}/runs", headers=here).json()["runs"]}
    assert client.get(f"{API}/runs", headers=elsewhere).json()["runs"] == []
    assert {f["id"] for f in client.get(f"{API}/flows", headers=here).json()} >= {"pay"}
    assert client.get(f"{API}/flows", headers=elsewhere).json() == []


def test_a_run_elsewhere_is_as_unknown_as_a_missing_one(
        world: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = world
    elsewhere = bearer(Role.OPERATOR, "other.*")
    hidden = client.get(f"{API}/runs/{ids['done']}", headers=elsewhere)
    missing = client.get(f"{API}/runs/nope", headers=elsewhere)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(ids["done"], "X") == \
        missing.json()["detail"].replace("nope", "X")


def test_outputs_need_their_own_permission(world: tuple[TestClient, dict[str, Any]]) -> None:
    client, ids = world
    viewer = client.get(f"{API}/runs/{ids['done']}", headers=bearer(Role.VIEWER, NS)).json()
    operator = client.get(f"{API}/runs/{ids['done']}", headers=bearer(Role.OPERATOR, NS)).json()
    assert viewer["outputs_hidden"] and viewer["nodes"][0]["outputs"] == {}
    assert not operator["outputs_hidden"] and operator["nodes"][0]["outputs"] == {"amount": 3}


def test_expired_and_revoked_tokens_are_refused(
        world: tuple[TestClient, dict[str, Any]]) -> None:
    from datetime import timedelta

    from interlock.access import tokens
    from interlock.store.db import session_scope
    client, _ = world
    with session_scope() as session:
        expired, _ = tokens.create(session, name="expired", role=Role.ADMIN, namespace="*",
                                   created_by="tests", expires_in=timedelta(seconds=-1))
        revoked, _ = tokens.create(session, name="revoked", role=Role.ADMIN, namespace="*",
                                   created_by="tests")
        tokens.revoke(session, "revoked")
    for token in (expired, revoked, revoked[:-1] + "x", "ilk_bad", "Basic abc"):
        resp = client.get(f"{API}/runs", headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401 and resp.json() == {"detail": UNAUTHENTICATED}


def test_a_refusal_is_audited_with_the_missing_permission(
        world: tuple[TestClient, dict[str, Any]]) -> None:
    from sqlalchemy import select

    from interlock.store.db import session_scope
    from interlock.store.tables import AuditRecord
    client, ids = world
    viewer = bearer(Role.VIEWER, NS, name="denied-viewer")
    assert client.post(f"{API}/runs/{ids['done']}/retry", headers=viewer).status_code == 403
    with session_scope() as session:
        denied = session.scalars(select(AuditRecord).where(
            AuditRecord.action == "access.denied",
            AuditRecord.actor == "user:denied-viewer")).all()
    assert [(d.target, d.after) for d in denied] == [
        (f"POST {API}/runs/{ids['done']}/retry", {"permission": "runs:retry", "namespace": None})]


def test_a_cached_token_under_another_scheme_is_refused(
        world: tuple[TestClient, dict[str, Any]]) -> None:
    """The token cache answers only what the full check would: a bearer credential."""
    client, _ = world
    token = bearer(name="cached")["Authorization"].split()[1]
    assert client.get(f"{API}/runs", headers={"Authorization": f"Bearer {token}"}).status_code \
        == 200  # now cached
    for header in (f"Basic {token}", f"Token {token}", token, f"Bearer {token}" + " " * 9000):
        resp = client.get(f"{API}/runs", headers={"Authorization": header})
        assert resp.status_code == 401 and resp.json() == {"detail": UNAUTHENTICATED}, header[:20]
