"""Engines, sessions and schema upgrades for SQLite (default, WAL) and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from interlock.config.env import settings

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x1A7E_10C4  # advisory lock id: one process migrates at a time
CONNECT_TIMEOUT_S = 10  # libpq's connect_timeout: an unanswered connection attempt gives up
KEEPALIVE_PROBES = 3  # unanswered TCP keepalives before a connection counts as dead

_engines: dict[str, Engine] = {}
_makers: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def engine_for(url: str | None = None) -> Engine:
    url = url or settings().database_url
    with _lock:
        if url not in _engines:
            engine = _create(url)
            try:
                upgrade(engine)
            except Exception:
                engine.dispose()  # not cached: the next call tries again (the store may be back)
                raise
            _makers[url] = sessionmaker(engine, expire_on_commit=False)
            _engines[url] = engine
    return _engines[url]


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_size=10, max_overflow=20, connect_args=_pg_args(parsed))
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front: read-then-write transactions of two
        # processes then wait on each other instead of failing with "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _pg_args(url: URL) -> dict[str, Any]:
    """Bounds on a PostgreSQL that hangs: a connection attempt gives up after
    CONNECT_TIMEOUT_S, a statement after INTERLOCK_STATEMENT_TIMEOUT_MS (PostgreSQL cancels
    it: QueryCanceled, which the API answers with 503). And on a client that vanishes: a
    session idle inside a transaction for INTERLOCK_IDLE_TX_TIMEOUT_MS is ended by the server,
    so the row locks of a host that lost its network mid-transaction (a run's lock, a
    schedule's cursor) pass to the other hosts instead of being held until its cable is back.
    And on a link that dies under a client: INTERLOCK_PG_DEAD_LINK_MS bounds how long a
    connection waits on a peer that acknowledges nothing (`_dead_link_args`).
    Options in the URL (a search_path) are kept: `connect_args` would replace them.
    Statements run often are prepared (INTERLOCK_PG_PREPARE_AFTER): on the hot path a
    fifth of PostgreSQL's CPU went to parsing and planning the same few statements."""
    given = url.query.get("options", "")
    options = " ".join(given) if isinstance(given, tuple) else given
    bounds = (f"-c statement_timeout={settings().statement_timeout_ms} "
              f"-c idle_in_transaction_session_timeout={settings().idle_tx_timeout_ms}")
    return {"prepare_threshold": settings().pg_prepare_after, "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"{options} {bounds}".strip(), **_dead_link_args(settings().pg_dead_link_ms)}


def _dead_link_args(bound_ms: int) -> dict[str, int]:
    """libpq's TCP bounds for a link that dies mid-conversation. Without them a client whose
    cable was pulled waits until TCP gives up: hours if the cable never comes back. (Once
    it is back, a cut scheduler has still taken over 15 s to notice in CI: docs/deploy.md.)
    `tcp_user_timeout` drops a connection whose sent data stays unacknowledged that long;
    keepalives probe a connection waiting for an answer (a peer's kernel acknowledges
    probes even while its backend is busy, so a long statement is never cut)."""
    if bound_ms <= 0:
        return {}
    return {"tcp_user_timeout": bound_ms, "keepalives": 1,
            "keepalives_idle": max(1, bound_ms // 2000),                  # half the bound idle,
            "keepalives_interval": max(1, bound_ms // 2000 // KEEPALIVE_PROBES),  # then probes
            "keepalives_count": KEEPALIVE_PROBES}


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (safe to call from many processes)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # Waiting for another process's migration, or a long one, is not a hung query;
            # nor is alembic's own Python between two DDL statements a vanished client (a
            # loaded host paused it past a short idle bound: the migration was ended).
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("SET idle_in_transaction_session_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        try:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            newer = _newer_than_this_release(cfg, conn)
            if newer is not None:
                # A newer release migrated the store (migrations only add: docs/operations.md).
                # This process runs on, so a rolling upgrade can restart old workers safely.
                log.warning("the store is at migration %s, newer than this release knows; "
                            "running without migrating: upgrade this process", newer)
                return
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.execute(text("RESET statement_timeout"))  # back to the configured bounds
                conn.execute(text("RESET idle_in_transaction_session_timeout"))
                conn.commit()


def _newer_than_this_release(cfg: Config, conn: Any) -> str | None:
    """The store's migration when this code does not know it (a newer release's), else None."""
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return None
    try:
        ScriptDirectory.from_config(cfg).get_revision(current)
    except CommandError:
        return current
    return None


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    engine_for(url)
    session = _makers[url or settings().database_url]()
    try:
        with session.begin():
            yield session
    finally:
        session.close()


def dispose_all() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _makers.clear()
