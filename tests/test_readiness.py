"""Liveness, readiness and a store that hangs, against the real PostgreSQL and Redis.

`/healthz` does no I/O; `/readyz` names the dependency that did not answer within its bound;
a request that waits on a locked table answers 503 when PostgreSQL cancels it at
INTERLOCK_STATEMENT_TIMEOUT_MS instead of hanging.
"""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about httpx2 (see test_api)
    from fastapi.testclient import TestClient

from interlock.api.main import create_app
from interlock.config.env import load_settings, settings
from interlock.operations.health import READY_BOUND_S
from interlock.store.db import dispose_all, engine_for
from tests.conftest import REDIS_URL

TIMEOUT_MS = 500
SLACK_S = 1.5  # scheduling and connection set-up on a busy machine


@pytest.fixture
def pg_api(pg_schema_url: str, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, str]]:
    """The API on a fresh PostgreSQL schema with a 500 ms statement timeout."""
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", pg_schema_url)
    monkeypatch.setenv("INTERLOCK_STATEMENT_TIMEOUT_MS", str(TIMEOUT_MS))
    monkeypatch.setenv("INTERLOCK_AUTH", "off")  # this file is about the store, not tokens
    monkeypatch.delenv("INTERLOCK_BROKER_URL", raising=False)
    settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client, pg_schema_url
    dispose_all()
    settings.cache_clear()


@pytest.fixture
def unstarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[pytest.MonkeyPatch, TestClient]]:
    """An app whose store is set by the test (no lifespan: a store that is down at start
    would stop it from starting, which is not what /readyz is for)."""
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
    monkeypatch.setenv("INTERLOCK_AUTH", "off")
    monkeypatch.delenv("INTERLOCK_BROKER_URL", raising=False)
    yield monkeypatch, TestClient(create_app(), raise_server_exceptions=False)
    dispose_all()
    settings.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A loopback port that accepts TCP connections and never says a word (a hung store)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody reads or answers
        yield int(s.getsockname()[1])


def timed(client: TestClient, path: str) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    response = client.get(path)
    return response.status_code, response.json(), time.monotonic() - started


def test_the_statement_timeout_is_a_setting_with_a_default() -> None:
    assert load_settings({}).statement_timeout_ms == 30000
    assert load_settings({"INTERLOCK_STATEMENT_TIMEOUT_MS": "750"}).statement_timeout_ms == 750


def test_pooled_connections_keep_the_timeout_and_the_urls_options(
        pg_api: tuple[TestClient, str]) -> None:
    """Set after the migration (which runs without it), kept beside the URL's search_path."""
    _, url = pg_api
    with engine_for().connect() as conn:
        assert conn.execute(text("SHOW statement_timeout")).scalar() == f"{TIMEOUT_MS}ms"
        schema = url.rsplit("%3D", 1)[1]
        assert conn.execute(text("SHOW search_path")).scalar() == schema


def test_a_request_on_a_locked_table_answers_503_within_the_statement_timeout(
        pg_api: tuple[TestClient, str]) -> None:
    client, url = pg_api
    assert client.get("/api/v1/runs").status_code == 200
    holder = create_engine(url)
    try:
        with holder.connect() as other:
            other.execute(text("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE"))  # held until rollback
            status, body, took = timed(client, "/api/v1/runs")
            assert status == 503, body
            assert took < TIMEOUT_MS / 1000 + SLACK_S, f"answered after {took:.2f} s"
            assert body == {"detail": "the store did not answer within the statement "
                                      "timeout; retry shortly"}
            # Alive all the same: liveness does no I/O.
            status, health, took = timed(client, "/healthz")
            assert (status, health["status"]) == (200, "ok") and took < SLACK_S
            other.rollback()
    finally:
        holder.dispose()
    assert client.get("/api/v1/runs").status_code == 200  # the lock gone, the store answers


def test_readyz_is_ready_when_the_store_and_the_broker_answer(
        pg_api: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = pg_api
    status, body, _ = timed(client, "/readyz")
    assert status == 200 and body["status"] == "ready", body
    assert set(body["checks"]) == {"store"}  # no broker configured: nothing to ping
    monkeypatch.setenv("INTERLOCK_BROKER_URL", REDIS_URL)
    settings.cache_clear()
    status, body, _ = timed(client, "/readyz")
    assert status == 200, body
    assert {name: c["ok"] for name, c in body["checks"].items()} == {"store": True, "broker": True}


def test_readyz_names_a_broker_that_does_not_answer(
        pg_api: tuple[TestClient, str], monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = pg_api
    monkeypatch.setenv("INTERLOCK_BROKER_URL", f"redis://127.0.0.1:{closed_port()}/0")
    settings.cache_clear()
    status, body, took = timed(client, "/readyz")
    assert status == 503 and took < READY_BOUND_S + SLACK_S, (body, took)
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "ok": False}
    assert body["detail"].startswith("not ready: broker unreachable"), body


def test_readyz_answers_503_when_the_store_is_unreachable(
        unstarted: tuple[pytest.MonkeyPatch, TestClient]) -> None:
    monkeypatch, client = unstarted
    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{closed_port()}/test"
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", url)
    settings.cache_clear()
    status, body, took = timed(client, "/readyz")
    assert status == 503 and took < READY_BOUND_S + SLACK_S, (body, took)
    assert body["status"] == "unready"
    assert body["checks"]["store"]["detail"] == "unreachable (OperationalError)"
    assert "hunter2" not in str(body) and "127.0.0.1" not in str(body)  # no URL, no password
    assert client.get("/healthz").status_code == 200


def test_readyz_does_not_hang_on_a_store_that_never_answers(
        unstarted: tuple[pytest.MonkeyPatch, TestClient], black_hole: int) -> None:
    monkeypatch, client = unstarted
    monkeypatch.setenv("INTERLOCK_DATABASE_URL",
                       f"postgresql+psycopg://postgres@127.0.0.1:{black_hole}/test")
    settings.cache_clear()
    status, body, took = timed(client, "/readyz")
    assert status == 503 and took < READY_BOUND_S + SLACK_S, (body, took)
    assert body["checks"]["store"]["detail"] == f"did not answer within {READY_BOUND_S:g} s"
    assert body["detail"] == f"not ready: store did not answer within {READY_BOUND_S:g} s"
