"""The console's server side without a browser: its files and headers, `GET /me`, and the
live streams (filters, namespaces, bounds), with the values a hostile caller would send."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.console import files, headers, sse

API = "/api/v1"
FLOW = "id: pay\nnamespace: finance.eu\nnodes:\n  send: {uses: noop, with: {amount: 3}}\n"
OTHER = "id: hr\nnamespace: people\nnodes:\n  send: {uses: noop, with: {n: 1}}\n"


@pytest.fixture
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in build: the route serves whatever `npm run build` wrote."""
    root = tmp_path / "static"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><div id=app></div>")
    (root / "assets" / "index-abc.js").write_text("console.log(1)")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside")
    monkeypatch.setattr(files, "STATIC", root)
    return root


@pytest.fixture
def client(sqlite_store: str) -> Iterator[TestClient]:
    from interlock.dispatch.embedded import EmbeddedDispatcher
    dispatcher = EmbeddedDispatcher()
    with TestClient(create_app(dispatcher=dispatcher), raise_server_exceptions=False) as c:
        yield c
    dispatcher.close()


def test_the_page_is_served_for_client_routes_with_its_security_headers(
        client: TestClient, built: Path) -> None:
    for path in ("/", "/runs/abc", "/runs/abc?x=1"):
        resp = client.get(path)
        assert resp.status_code == 200 and "id=app" in resp.text
        for name, value in headers.PAGE.items():
            assert resp.headers[name] == value
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["cache-control"] == "no-store"
    asset = client.get("/assets/index-abc.js")
    assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
    assert asset.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/assets/missing.js", "/missing.png", "/assets/../../secret.txt", "/%2e%2e/secret.txt",
    "/..%2fsecret.txt", "/assets/%2e%2e/%2e%2e/secret.txt", "/a%00b", "/" + "a/" * 400,
    "/assets/..\\..\\secret.txt"])
def test_nothing_outside_the_build_is_served(client: TestClient, built: Path, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code in (404, 200)
    assert "outside" not in resp.text
    if resp.status_code == 200:  # a client route: the page, never a file
        assert "id=app" in resp.text


def test_the_api_keeps_its_own_404s(client: TestClient, built: Path) -> None:
    for method in ("GET", "POST", "DELETE"):
        resp = client.request(method, f"{API}/nope")
        assert resp.status_code == 404 and resp.json() == {"detail": "Not Found"}, method
    assert client.get("/api").status_code == 404


def test_without_a_build_the_page_says_how_to_build_it(
        client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "STATIC", tmp_path / "empty")
    resp = client.get("/runs/x")
    assert resp.status_code == 503
    assert files.BUILD_COMMAND in resp.text and resp.headers["cache-control"] == "no-store"
    assert client.get("/healthz").status_code == 200


def test_me_tells_the_caller_what_it_may_do_where(client: TestClient) -> None:
    viewer = client.get(f"{API}/me", headers=bearer(Role.VIEWER, "finance.*", name="v")).json()
    assert viewer["actor"] == "user:v"
    assert viewer["roles"] == [{"role": "viewer", "namespace": "finance.*"}]
    assert viewer["permissions"]["runs:read"] == ["finance.*"]
    assert "runs:cancel" not in viewer["permissions"]
    operator = client.get(f"{API}/me", headers=bearer(Role.OPERATOR, "*")).json()
    assert operator["permissions"]["runs:cancel"] == ["*"]
    assert client.get(f"{API}/me").status_code == 401
    producer = client.get(f"{API}/me", headers=bearer(Role.PRODUCER, "*"))
    assert producer.status_code == 403  # no `runs:read` anywhere: the console is not for it


@pytest.mark.parametrize("header", [
    "Bearer <script>alert(1)</script>", "Bearer " + "a" * 10_000, "Bearer ilk_x_\u202e".encode(),
    "Basic YWRtaW46YWRtaW4=", "Bearer"])
def test_me_refuses_hostile_credentials(client: TestClient, header: str | bytes) -> None:
    resp = client.get(f"{API}/me", headers={"Authorization": header})
    assert resp.status_code == 401
    assert "script" not in resp.text


def _events(client: TestClient, path: str, headers: dict[str, str], want: int = 1,
            ) -> list[tuple[str, Any]]:
    """The first ``want`` events of a stream, then the stream is closed."""
    found: list[tuple[str, Any]] = []
    with client.stream("GET", path, headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name or "message", json.loads(line[6:])))
                if len(found) >= want:
                    break
    return found


def test_the_runs_stream_shows_only_the_callers_namespaces(client: TestClient) -> None:
    admin = bearer(name="admin")
    for source in (FLOW, OTHER):
        assert client.post(f"{API}/flows", json={"source": source}, headers=admin).status_code \
            == 201
    mine = client.post(f"{API}/runs", json={"namespace": "finance.eu", "flow_id": "pay"},
                       headers=admin).json()["id"]
    theirs = client.post(f"{API}/runs", json={"namespace": "people", "flow_id": "hr"},
                         headers=admin).json()["id"]
    wait_run(mine), wait_run(theirs)
    viewer = bearer(Role.VIEWER, "finance.*")
    [(name, data)] = _events(client, f"{API}/stream/runs", viewer)
    assert name == "runs" and [r["id"] for r in data["runs"]] == [mine]
    [(_, data)] = _events(client, f"{API}/stream/runs?trigger=api&state=succeeded", admin)
    assert {r["id"] for r in data["runs"]} == {mine, theirs}
    [(_, data)] = _events(client, f"{API}/stream/runs?trigger=schedule", admin)
    assert data["runs"] == []
    [(_, data)] = _events(client, f"{API}/stream/runs?namespace=people", viewer)
    assert data["runs"] == []  # asking for a namespace does not widen what one may read
    [(name, data)] = _events(client, f"{API}/stream/runs/{mine}", viewer)
    assert name == "run" and data["run"]["id"] == mine and data["run"]["outputs_hidden"]
    assert data["trace"]["run"]["id"] == mine
    assert client.get(f"{API}/stream/runs/{theirs}", headers=viewer).status_code == 404


GATE = ("id: gate\nnamespace: finance.eu\nnodes:\n  pay:\n    uses: noop\n"
        "    approval: {subject: pay, rules: [{role: approver}]}\n")


def test_the_approvals_stream_is_the_inbox_of_the_callers_namespaces(
        client: TestClient) -> None:
    admin = bearer(name="gatekeeper")  # author and starter: may not decide
    assert client.post(f"{API}/flows", json={"source": GATE}, headers=admin).status_code == 201
    run = client.post(f"{API}/runs", json={"namespace": "finance.eu", "flow_id": "gate"},
                      headers=admin).json()["id"]
    approver = bearer(Role.APPROVER, "finance.*")
    for _ in range(100):
        [(name, data)] = _events(client, f"{API}/stream/approvals?mine=true", approver)
        if data["approvals"]:
            break
        time.sleep(0.1)
    assert name == "approvals" and [a["run_id"] for a in data["approvals"]] == [run]
    assert data["approvals"][0]["state"] == "pending" and "T" in data["approvals"][0]["created_at"]
    [(_, data)] = _events(client, f"{API}/stream/approvals?mine=true", admin)
    assert data["approvals"] == []  # the starter could not vote on it
    [(_, data)] = _events(client, f"{API}/stream/approvals?state=pending", admin)
    assert [a["run_id"] for a in data["approvals"]] == [run]
    [(_, data)] = _events(client, f"{API}/stream/approvals", bearer(Role.VIEWER, "people"))
    assert data["approvals"] == []
    for query in ("state=<script>", "origin=elsewhere", "limit=201", "flow=" + "x" * 331):
        resp = client.get(f"{API}/stream/approvals?{query}", headers=approver)
        assert resp.status_code == 422, query


@pytest.mark.parametrize("query", [
    "state=<script>", "trigger=' OR 1=1 --", "since=2026-01-01T00:00:00",  # no zone
    "since=9999999-01-01T00:00:00Z", "limit=0", "limit=201", "limit=-1", "limit=1e9",
    "namespace=" + "a" * 201, "flow_id=" + "x" * 129, "since=%00", "system=" + "s" * 201])
def test_the_runs_stream_refuses_hostile_filters(client: TestClient, query: str) -> None:
    resp = client.get(f"{API}/stream/runs?{query}", headers=bearer(Role.VIEWER, "*"))
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize("system", ["' OR 1=1 --", "airflow/%", "a\\_b", "<script>"])
def test_the_runs_list_takes_a_hostile_system_as_a_plain_name(client: TestClient,
                                                              system: str) -> None:
    """`system=` is compared as it is (no pattern, no SQL): a run exists, and is not listed
    for a system nothing has."""
    admin = bearer(Role.ADMIN, "*", name="system-filter-admin")
    flow = "id: plain\nnamespace: tests.sys\nnodes:\n  a: {uses: noop}\n"
    assert client.post(f"{API}/flows", json={"source": flow}, headers=admin).status_code == 201
    assert client.post(f"{API}/runs", json={"namespace": "tests.sys", "flow_id": "plain"},
                       headers=admin).status_code == 201
    viewer = bearer(Role.VIEWER, "*")
    assert client.get(f"{API}/runs", headers=viewer).json()["runs"] != []
    resp = client.get(f"{API}/runs", params={"system": system}, headers=viewer)
    assert resp.status_code == 200 and resp.json()["runs"] == [], resp.text
    too_long = client.get(f"{API}/runs", params={"system": "s" * 201}, headers=viewer)
    assert too_long.status_code == 422


def test_a_window_that_ends_before_it_starts_is_refused(client: TestClient) -> None:
    resp = client.get(f"{API}/stream/runs", headers=bearer(Role.VIEWER, "*"), params={
        "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert resp.status_code == 400


@pytest.mark.parametrize("run_id", ["..%2Fruns", "x" * 101, "<img src=x onerror=alert(1)>",
                                    "' OR '1'='1"])
def test_the_run_stream_refuses_unknown_and_hostile_ids(client: TestClient, run_id: str) -> None:
    resp = client.get(f"{API}/stream/runs/{run_id}", headers=bearer(Role.VIEWER, "*"))
    assert resp.status_code in (404, 422)
    assert "<img" not in resp.headers.get("content-type", "")


def test_streams_are_bounded_per_principal(client: TestClient) -> None:
    viewer = bearer(Role.VIEWER, "*", name="greedy")
    with ExitStack() as stack:
        for _ in range(sse.PER_PRINCIPAL):
            resp = stack.enter_context(client.stream("GET", f"{API}/stream/runs", headers=viewer))
            assert resp.status_code == 200
            next(resp.iter_lines())
        over = client.get(f"{API}/stream/runs", headers=viewer)
        assert over.status_code == 429 and over.headers["retry-after"]
        assert "greedy" in over.json()["detail"]
        other = bearer(Role.VIEWER, "*")  # another principal still gets one
        assert _events(client, f"{API}/stream/runs", other)[0][0] == "runs"


def test_a_stream_ends_when_its_token_is_revoked(client: TestClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "RECHECK_S", 0.0)
    viewer = bearer(Role.VIEWER, "*", name="leaving")
    admin = bearer(name="revoker")
    got: list[tuple[str, Any]] = []
    with client.stream("GET", f"{API}/stream/runs", headers=viewer) as resp:
        name = None
        for line in resp.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                got.append((name or "", json.loads(line[6:])))
                if name == "runs":
                    assert client.post(f"{API}/tokens/leaving/revoke",
                                       headers=admin).status_code == 200
    assert got[-1] == ("end", {"reason": "the credential is no longer accepted: log in again"})
    assert client.app.state.streams.count("user:leaving") == 0  # type: ignore[attr-defined]


def test_the_hub_releases_slots_and_refuses_after_shutdown() -> None:
    hub = sse.StreamHub(per_principal=1, total=2)
    hub.acquire("user:a")
    with pytest.raises(sse.TooManyStreams):
        hub.acquire("user:a")
    hub.acquire("user:b")
    with pytest.raises(sse.TooManyStreams):
        hub.acquire("user:c")  # the process is full
    hub.release("user:a")
    assert hub.count("user:a") == 0 and hub.count() == 1
    hub.shutdown()
    with pytest.raises(sse.TooManyStreams):
        hub.acquire("user:a")


def test_an_event_is_one_line_of_json_whatever_the_data() -> None:
    raw = sse.event("run", {"error": "line1\n\nevent: end\ndata: {}"}).decode()
    assert raw.count("\n\n") == 1 and raw.endswith("\n\n")
    assert json.loads(raw.split("data: ", 1)[1]) == {"error": "line1\n\nevent: end\ndata: {}"}


def test_a_wheel_carries_the_built_console(tmp_path: Path) -> None:
    from test_packaging import built_files
    if not files.built():
        pytest.skip(f"the console is not built: `{files.BUILD_COMMAND}`")
    names = built_files(tmp_path)
    assert "interlock/console/static/index.html" in names
    shipped = {n for n in names if n.startswith("interlock/console/static/assets/")}
    built = {f"interlock/console/static/assets/{p.name}"
             for p in (files.STATIC / "assets").iterdir()}
    assert shipped == built
