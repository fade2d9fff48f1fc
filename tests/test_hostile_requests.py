"""Hostile requests (issue 12, point 4): what an attacker would send, refused with the right
status, within a time or memory bound, and with nothing stored."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import func, select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.config.env import settings
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, ExternalRun, Run

API = "/api/v1"
SECRET = "hostile-test-secret-" + uuid.uuid4().hex
MiB = 1 << 20

FLOW = dedent("""
    id: target
    namespace: tests.hostile
    inputs:
      data: {type: object}
    triggers:
      - webhook: {key: open-hook}
      - webhook: {key: signed-hook, secret: {env: HOSTILE_HOOK_SECRET}}
    nodes:
      only: {uses: noop, with: {v: 1}}
""").lstrip()


def counts() -> dict[str, int]:
    """Rows a refused request must not have added."""
    with session_scope() as session:
        return {table.__name__: session.scalar(select(func.count()).select_from(table)) or 0
                for table in (Run, AuditRecord, ExternalRun)}


def after_refusal(before: dict[str, int], path: str) -> dict[str, int]:
    """What a refused request leaves: nothing, but a push refused unread is still audited
    (one `event.refused` record: who is unknown, its size, never its body)."""
    if "/events/" not in path:
        return before
    with session_scope() as session:
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
    assert last is not None and last.action == "event.refused", last
    assert last.actor == "unverified:unknown" and set(last.after["body"]) == {"bytes"}
    return {**before, "AuditRecord": before["AuditRecord"] + 1}


@pytest.fixture
def client(embedded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          airflow/test:
            url: http://127.0.0.1:9
            events_secret: {env: HOSTILE_EVENTS_SECRET}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("INTERLOCK_AUTH", "off")  # this file is about hostile bodies, not tokens
    settings.cache_clear()
    monkeypatch.setenv("HOSTILE_EVENTS_SECRET", SECRET)
    monkeypatch.setenv("HOSTILE_HOOK_SECRET", "hook-" + SECRET)
    with TestClient(create_app(dispatcher=embedded)) as c:
        assert c.post(f"{API}/flows", json={"source": FLOW}).status_code == 201
        yield c


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# --- ASGI driving: a body streamed in chunks, counting what the server pulled ---------------

async def _drive(app: Any, method: str, path: str, chunks: Iterator[bytes],
                 headers: dict[str, str], raw_headers: list[tuple[bytes, bytes]] | None = None,
                 ) -> tuple[int, int, bytes]:
    """Call the app with a streamed body; (status, bytes the app read, response body)."""
    read = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal read
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("testserver", 80),
             "client": ("127.0.0.1", 5000),
             "headers": raw_headers or [(k.lower().encode(), v.encode())
                                        for k, v in headers.items()]}
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], read, body


def _zeros(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"0" * size


@pytest.mark.parametrize("path", [f"{API}/events/airflow", f"{API}/runs",
                                  f"{API}/webhooks/tests.hostile/target/open-hook"])
def test_a_100_mb_chunked_body_is_refused_413_after_reading_one_mib(
        client: TestClient, path: str) -> None:
    before = counts()
    started = time.monotonic()
    status, read, body = asyncio.run(_drive(client.app, "POST", path, _zeros(100 * MiB),
                                            {"content-type": "application/json"}))
    assert status == 413, body
    assert read <= MiB + 64 * 1024  # stopped at the first chunk past the limit
    assert time.monotonic() - started < 1.0
    assert b"INTERLOCK_MAX_BODY_BYTES" in body
    assert counts() == after_refusal(before, path)


def test_a_declared_100_mb_body_is_refused_without_reading_a_byte(client: TestClient) -> None:
    before = counts()
    status, read, _ = asyncio.run(_drive(
        client.app, "POST", f"{API}/events/airflow", _zeros(100 * MiB),
        {"content-type": "application/json", "content-length": str(100 * MiB)}))
    assert (status, read) == (413, 0)
    assert counts() == after_refusal(before, f"{API}/events/airflow")


def test_the_body_limit_is_a_setting(embedded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.config.env import load_settings
    monkeypatch.setenv("INTERLOCK_AUTH", "off")
    assert load_settings({}).max_body_bytes == MiB
    monkeypatch.setenv("INTERLOCK_MAX_BODY_BYTES", "1000")
    settings.cache_clear()
    with TestClient(create_app(dispatcher=embedded)) as c:
        assert c.post(f"{API}/runs", content=b" " * 1001,
                      headers={"content-type": "application/json"}).status_code == 413
        assert c.post(f"{API}/runs", json={"flow_id": "x"}).status_code == 404
    settings.cache_clear()


# --- JSON nesting ---------------------------------------------------------------------------

DEEP_BODIES = {
    f"{API}/runs": '{"flow_id": "target", "namespace": "tests.hostile", "inputs": '
                   '{"data": {"x": %s}}}',
    f"{API}/webhooks/tests.hostile/target/open-hook": '{"data": {"x": %s}}',
    f"{API}/events/airflow": '{"system": "airflow/test", "conf": %s}',
    f"{API}/lineage": '{"eventType": "COMPLETE", "run": {"facets": %s}}',
    f"{API}/flows/validate": '{"source": %s}',
}


@pytest.mark.parametrize("path", sorted(DEEP_BODIES))
@pytest.mark.parametrize("levels", [900, 100_000])
def test_json_nested_past_the_limit_is_refused_on_every_json_route(
        client: TestClient, path: str, levels: int) -> None:
    body = (DEEP_BODIES[path] % _deep(levels)).encode()
    if path.endswith("/events/airflow"):
        headers = {"content-type": "application/json", **signing.sign(SECRET, body)}
    else:
        headers = {"content-type": "application/json"}
    before = counts()
    started = time.monotonic()
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert "nested deeper than 32" in response.json()["detail"]
    # Not a speed target (bench/ has those): a scan that recursed or went quadratic would
    # take minutes on 100,000 levels. 1 s was tight enough to fail on a route's first,
    # cold request (CI, PostgreSQL, lineage).
    assert time.monotonic() - started < 5.0
    assert counts() == after_refusal(before, path)


def test_brackets_inside_strings_do_not_count(client: TestClient) -> None:
    response = client.post(f"{API}/runs", json={
        "flow_id": "target", "namespace": "tests.hostile",
        "inputs": {"data": {"text": "[" * 1000 + '\\"{' * 100}}})
    assert response.status_code == 201, response.text


# --- browser-forgeable requests -------------------------------------------------------------

@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "text/plain", "TEXT/PLAIN; charset=utf-8"])
@pytest.mark.parametrize("path", [f"{API}/runs", f"{API}/flows",
                                  f"{API}/webhooks/tests.hostile/target/open-hook",
                                  f"{API}/runs/anything/cancel"])
def test_form_and_text_bodies_on_mutating_routes_get_415(
        client: TestClient, path: str, content_type: str) -> None:
    before = counts()
    body = json.dumps({"flow_id": "target", "namespace": "tests.hostile"})
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 415, response.text
    assert counts() == before


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver.evil",
                                    "http://testserver:8080", "not a url"])
def test_a_cross_site_origin_on_a_mutating_route_gets_403(client: TestClient,
                                                          origin: str) -> None:
    before = counts()
    response = client.post(f"{API}/runs", json={"flow_id": "target",
                                                "namespace": "tests.hostile"},
                           headers={"origin": origin})
    assert response.status_code == 403, response.text
    assert counts() == before
    # Reading is not a mutation: a cross-site GET is answered (CORS decides what a page sees).
    assert client.get(f"{API}/runs", headers={"origin": origin}).status_code == 200


def test_same_host_and_allowed_origins_pass(embedded: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_AUTH", "off")
    monkeypatch.setenv("INTERLOCK_ALLOWED_ORIGINS", "https://console.example.com, "
                                                    "http://localhost:5173")
    settings.cache_clear()
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.post(f"{API}/flows", json={"source": FLOW})
        for origin in ("http://testserver", "https://console.example.com",
                       "http://localhost:5173"):
            response = c.post(f"{API}/runs", json={"flow_id": "target",
                                                   "namespace": "tests.hostile"},
                              headers={"origin": origin})
            assert response.status_code == 201, (origin, response.text)
    settings.cache_clear()


# --- stored records stay within the limit; a failed export never looks complete ------------

def test_a_deep_value_reaching_the_audit_trail_is_clipped_not_stored_whole(embedded: Any) -> None:
    from interlock.config.limits import MAX_JSON_DEPTH, too_deep
    from interlock.store import audit
    deep: Any = "leaf"
    for _ in range(200):
        deep = {"x": deep}
    with session_scope() as session:
        seq = audit.record(session, actor="test", action=audit.Action.FOREIGN_ACTION,
                           target="t", origin="test", after={"payload": deep})
    with session_scope() as session:
        row = session.scalar(select(AuditRecord).where(AuditRecord.seq == seq))
        assert row is not None and not too_deep(row.after, MAX_JSON_DEPTH)
    assert audit_verify_ok()


def audit_verify_ok() -> bool:
    from interlock.audit.query import verify
    return verify().ok


def test_deep_run_inputs_are_refused_by_the_inputs_check() -> None:
    from interlock.spec.inputs import InputError, check_inputs
    from interlock.spec.models import InputSpec, InputType
    deep: Any = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InputError, match="nested deeper than 32"):
        check_inputs({"a": InputSpec(type=InputType.ARRAY)}, {"a": deep})


def test_an_export_failing_mid_stream_ends_broken_with_an_error_line(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.audit import query
    from interlock.store import audit
    with session_scope() as session:
        for i in range(3):
            audit.record(session, actor="test", action=audit.Action.FOREIGN_ACTION,
                         target=f"t{i}", origin="test")
    real = query.AuditRecordPublic.of
    calls = {"n": 0}

    def failing_after_two(row: AuditRecord) -> Any:
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("the store went away")
        return real(row)

    monkeypatch.setattr(query, "EXPORT_BATCH", 2)
    monkeypatch.setattr(query.AuditRecordPublic, "of", failing_after_two)
    assert counts()["AuditRecord"] > 2
    sent: list[dict[str, Any]] = []
    asked: list[int] = []

    async def receive() -> dict[str, Any]:
        asked.append(1)
        if len(asked) > 1:
            await asyncio.sleep(30)  # the client stays connected
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": f"{API}/audit/export",
             "raw_path": f"{API}/audit/export".encode(), "query_string": b"", "root_path": "",
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000), "headers": []}
    with pytest.raises(RuntimeError):
        asyncio.run(client.app(scope, receive, send))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m.get("more_body") for m in bodies)  # never the final, empty chunk
    lines = b"".join(m.get("body", b"") for m in bodies).decode().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[-1]) == {"error": "the export failed: RuntimeError",
                                     "complete": False}


# --- YAML alias expansion -------------------------------------------------------------------

def _laughs(levels: int = 6, width: int = 10) -> str:
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]"
              for i in range(1, levels + 1)]
    return "id: laughs\nnodes:\n  n: {uses: noop}\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_a_billion_laughs_flow_is_refused_quickly_with_its_line(client: TestClient,
                                                                levels: int) -> None:
    before = counts()
    started = time.monotonic()
    response = client.post(f"{API}/flows/validate", json={"source": _laughs(levels)})
    assert time.monotonic() - started < 0.5
    assert response.status_code in (200, 422), response.text
    problems = response.json()["problems"]
    assert any("expand to more than" in p["message"] for p in problems)
    started = time.monotonic()
    assert client.post(f"{API}/flows", json={"source": _laughs(levels)}).status_code == 422
    assert time.monotonic() - started < 0.5
    assert counts() == before


def test_merge_key_laughs_and_deep_yaml_are_refused() -> None:
    from interlock.config.yamlpos import load_located
    merges = ["b0: &b0 {k: v}"] + [
        f"b{i}: &b{i} {{<<: [{', '.join([f'*b{i - 1}'] * 10)}]}}" for i in range(1, 8)]
    started = time.monotonic()
    doc = load_located("\n".join(merges) + "\n", "m.yaml")
    assert time.monotonic() - started < 0.5
    assert doc.problems and "expand to more than" in doc.problems[0].message
    deep = load_located("a: " + "[" * 100 + "]" * 100 + "\n", "d.yaml")
    assert "nested deeper than" in deep.problems[0].message
    assert (deep.problems[0].line, deep.problems[0].col) == (1, 44)


def test_a_billion_laughs_systems_file_is_refused(tmp_path: Path) -> None:
    from interlock.config.systems import parse_systems
    from interlock.errors import SpecError
    text = "systems: {}\n" + _laughs().split("\n", 3)[3]
    started = time.monotonic()
    with pytest.raises(SpecError) as caught:
        parse_systems(text, "systems.yaml")
    assert time.monotonic() - started < 0.5
    assert any("expand to more than" in p.message for p in caught.value.problems)


# --- signed events ------------------------------------------------------------------------

def _event_body() -> bytes:
    return json.dumps({"event_id": uuid.uuid4().hex, "system": "airflow/test",
                       "kind": "dag_run", "state": "running", "dag_id": "d",
                       "run_id": "r-" + uuid.uuid4().hex, "run_type": "manual",
                       "start_date": "2026-11-24T06:00:00+00:00", "conf": {}}).encode()


def _refusals() -> list[AuditRecord]:
    with session_scope() as session:
        return list(session.scalars(select(AuditRecord).where(
            AuditRecord.action == "event.refused").order_by(AuditRecord.seq)))


def test_a_replayed_event_is_refused_and_audited_as_unverified(client: TestClient) -> None:
    body = _event_body()
    headers = {"content-type": "application/json", **signing.sign(SECRET, body)}
    assert client.post(f"{API}/events/airflow", content=body, headers=headers).status_code == 202
    before = counts()
    replay = client.post(f"{API}/events/airflow", content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json() == {"detail": "the event is not signed by a registered system; "
                                       "see the audit trail for why"}
    assert counts()["ExternalRun"] == before["ExternalRun"]
    (refused,) = _refusals()
    assert refused.actor == "unverified:airflow/test"
    assert "replayed" in refused.after["reason"]


@pytest.mark.parametrize("signature", [b"sha256=\xc3\xa9" + b"0" * 62, b"\xff" * 71, b"sha256="])
def test_a_non_ascii_or_short_signature_header_gets_401(client: TestClient,
                                                        signature: bytes) -> None:
    body = _event_body()
    headers = [(b"content-type", b"application/json"),
               (b"x-interlock-timestamp", str(int(time.time())).encode()),
               (b"x-interlock-signature", signature)]
    status, _, answer = asyncio.run(_drive(client.app, "POST", f"{API}/events/airflow",
                                           iter([body]), {}, raw_headers=headers))
    assert status == 401, answer
    assert [r.actor for r in _refusals()] == ["unverified:airflow/test"]


def test_a_401_reveals_no_path_system_or_variable(client: TestClient) -> None:
    body = json.dumps({"system": "airflow/unknown-one"}).encode()
    response = client.post(f"{API}/events/airflow", content=body,
                           headers={"content-type": "application/json",
                                    **signing.sign(SECRET, body)})
    assert response.status_code == 401
    text = response.text
    for leak in ("systems.yaml", "airflow/test", "HOSTILE_EVENTS_SECRET", "registered:"):
        assert leak not in text
    assert _refusals()[-1].actor == "unverified:airflow/unknown-one"


@pytest.mark.parametrize("content", ["\n", "", "short-secret"])
def test_an_empty_or_short_events_secret_is_refused_at_load(tmp_path: Path,
                                                            content: str) -> None:
    from interlock.config.systems import parse_systems
    from interlock.errors import SpecError
    secret = tmp_path / "secret"
    secret.write_text(content)
    text = f"systems:\n  airflow/a:\n    url: http://x\n    events_secret: {{file: {secret}}}\n"
    with pytest.raises(SpecError) as caught:
        parse_systems(text, "systems.yaml")
    (problem,) = caught.value.problems
    assert (problem.line, "at least 16") == (4, "at least 16") and "at least 16" in problem.message


def test_a_literal_credential_in_headers_is_refused_with_its_line() -> None:
    from interlock.config.systems import parse_systems
    from interlock.errors import SpecError
    text = dedent("""
        systems:
          dagster/a:
            url: http://x
            headers:
              X-Team: data
              Authorization: Bearer abcdefabcdef
              X-Api-Key: {env: KEY}
    """).lstrip()
    with pytest.raises(SpecError) as caught:
        parse_systems(text, "systems.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 6 and "Authorization" in problem.message


# --- webhooks -----------------------------------------------------------------------------

def _hub(secret: str, body: bytes) -> str:
    import hashlib
    import hmac
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_signed_webhook_needs_the_right_signature(client: TestClient) -> None:
    url = f"{API}/webhooks/tests.hostile/target/signed-hook"
    body = json.dumps({"data": {"order": 1}}).encode()
    before = counts()
    for signature in (None, _hub("wrong-secret-wrong-secret", body), "sha256=zz",
                      _hub("hook-" + SECRET, body + b" ")):
        headers = {"content-type": "application/json"}
        if signature:
            headers["x-hub-signature-256"] = signature
        response = client.post(url, content=body, headers=headers)
        assert response.status_code == 401, response.text
        assert "HOSTILE" not in response.text
    after = counts()
    assert after["Run"] == before["Run"]
    assert after["AuditRecord"] == before["AuditRecord"] + 4  # each refusal audited
    good = client.post(url, content=body, headers={
        "content-type": "application/json", "x-hub-signature-256": _hub("hook-" + SECRET, body)})
    assert good.status_code == 201, good.text


def test_unknown_flow_and_unknown_key_give_byte_identical_404s(client: TestClient) -> None:
    before = counts()
    answers = [client.post(f"{API}/webhooks/{path}", json={})
               for path in ("tests.hostile/target/no-such-key", "tests.hostile/no-flow/open-hook",
                            "nowhere/no-flow/no-key")]
    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert counts() == before


# --- bad cursors --------------------------------------------------------------------------

def test_bad_log_and_audit_cursors_get_400(client: TestClient) -> None:
    import base64
    run = client.post(f"{API}/runs", json={"flow_id": "target", "namespace": "tests.hostile"})
    run_id = run.json()["id"]
    from helpers import wait_run
    wait_run(run_id)
    for cursor in ("-1", "abc", "1e5", "9" * 40, "\u0661"):
        response = client.get(f"{API}/runs/{run_id}/nodes/only/logs", params={"cursor": cursor})
        assert response.status_code in (200, 400), (cursor, response.text)
    huge = base64.urlsafe_b64encode(json.dumps(["audit", 10**30]).encode()).decode().rstrip("=")
    for cursor in (huge, "abc", "-1"):
        assert client.get(f"{API}/audit", params={"cursor": cursor}).status_code == 400
