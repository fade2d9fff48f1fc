"""Shared fixtures: a fresh store per test, on SQLite and on the real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations.runtime import periodic_jobs
from interlock.store.db import dispose_all
from interlock.testing import pg_schema

pytest_plugins = ["fixtures_airflow", "fixtures_dagster", "fixtures_oidc", "fixtures_browser",
                  "fixtures_llm"]

PG_URL = os.environ.get("INTERLOCK_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("INTERLOCK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parents[1]
# The suite runs as root, and a root worker refuses to run scripts as root unless told to
# (docs/deploy.md, "Least privilege"); tests/test_run_as.py covers the other users.
os.environ.setdefault("INTERLOCK_RUN_AS", "root")


def _use(monkeypatch: pytest.MonkeyPatch, home: Path, url: str) -> None:
    monkeypatch.setenv("INTERLOCK_HOME", str(home))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", url)
    # The policy folder defaults to ./policies: a test writing policies (the API, the fuzzer)
    # must write them under its own home, never into the checkout.
    monkeypatch.setenv("INTERLOCK_POLICIES", str(home / "policies"))
    monkeypatch.delenv("INTERLOCK_BROKER_URL", raising=False)
    settings.cache_clear()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema (dropped afterwards)."""
    yield from pg_schema(PG_URL)


@pytest.fixture
def pg_with(pg_schema_url: str, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A PostgreSQL store whose settings the test sets first (with the monkeypatch it
    yields, then `settings.cache_clear()`); its engines are disposed afterwards."""
    monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
    monkeypatch.setenv("INTERLOCK_DATABASE_URL", pg_schema_url)
    yield monkeypatch
    dispose_all()
    settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points Interlock at an empty store of each kind in turn; yields its URL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'interlock.db'}"
    else:
        url = request.getfixturevalue("pg_schema_url")
    _use(monkeypatch, tmp_path, url)
    yield url
    dispose_all()
    settings.cache_clear()


@pytest.fixture
def embedded(store_url: str) -> Iterator[EmbeddedDispatcher]:
    """The in-process dispatcher on each kind of store; closed (threads joined) afterwards."""
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'interlock.db'}"
    _use(monkeypatch, tmp_path, url)
    yield url
    dispose_all()
    settings.cache_clear()
