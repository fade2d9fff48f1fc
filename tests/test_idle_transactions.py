"""A host that loses its network in the middle of a transaction must not keep its row locks
until its cable is back (found by tests/test_netns.py: a scheduler cut off while it held a
schedule's cursor stopped the other scheduler's ticks for as long as the cut lasted).

Every PostgreSQL session Interlock opens carries `idle_in_transaction_session_timeout`
(INTERLOCK_IDLE_TX_TIMEOUT_MS): the server ends a session that sits inside a transaction
that long, and its locks pass on. Shown here on the real PostgreSQL with a client that goes
silent while holding a lock, as a cut one does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from interlock.config.env import load_settings, settings
from interlock.store.db import dispose_all, session_scope
from tests.conftest import _use

LOCK = 0x1D1E


@pytest.fixture
def short_idle_store(pg_schema_url: str, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _use(monkeypatch, tmp_path, pg_schema_url)
    monkeypatch.setenv("INTERLOCK_IDLE_TX_TIMEOUT_MS", "500")
    settings.cache_clear()
    yield pg_schema_url
    dispose_all()
    settings.cache_clear()


def test_a_silent_lock_holder_is_ended_and_its_lock_passes_on(short_idle_store: str) -> None:
    waited: list[float] = []

    def other_host() -> None:
        began = time.monotonic()
        with session_scope() as session:
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
        waited.append(time.monotonic() - began)

    with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
        with session_scope() as silent:
            silent.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK})
            contender = threading.Thread(target=other_host)
            contender.start()
            contender.join(timeout=10)
            silent.execute(text("SELECT 1"))  # its next word: the server has hung up
    assert waited and 0.3 < waited[0] < 3, waited


def test_the_bound_is_on_by_default_and_can_be_turned_off(short_idle_store: str,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    assert load_settings({}).idle_tx_timeout_ms == 60000
    with session_scope() as session:
        assert session.scalar(text("SHOW idle_in_transaction_session_timeout")) == "500ms"
    dispose_all()
    monkeypatch.setenv("INTERLOCK_IDLE_TX_TIMEOUT_MS", "0")
    settings.cache_clear()
    with session_scope() as session:
        assert session.scalar(text("SHOW idle_in_transaction_session_timeout")) == "0"
