"""A PostgreSQL connection whose link dies is dropped within INTERLOCK_PG_DEAD_LINK_MS
(TCP keepalives and TCP_USER_TIMEOUT on its socket), not after TCP's own backoff. The
cable-pull itself is in test_netns.py; here: the kernel really holds the bounds."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from interlock.config.env import load_settings, settings
from interlock.store.db import session_scope


def test_the_setting_defaults_to_thirty_seconds_and_zero_leaves_the_os_bounds() -> None:
    assert load_settings({}).pg_dead_link_ms == 30000
    assert load_settings({"INTERLOCK_PG_DEAD_LINK_MS": "0"}).pg_dead_link_ms == 0
    with pytest.raises(ValueError):
        load_settings({"INTERLOCK_PG_DEAD_LINK_MS": "soon"})


def _socket_options() -> dict[str, int]:
    """The TCP options the kernel holds for a pooled connection's socket."""
    with session_scope() as session:
        raw: Any = session.connection().connection.driver_connection
        sock = socket.socket(fileno=raw.pgconn.socket)
        try:
            return {"user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                    "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)}
        finally:
            sock.detach()   # the descriptor is libpq's: read it, never close it


def test_the_socket_carries_the_bound(pg_with: pytest.MonkeyPatch) -> None:
    pg_with.setenv("INTERLOCK_PG_DEAD_LINK_MS", "6000")
    settings.cache_clear()
    options = _socket_options()
    assert options["user_timeout"] == 6000
    assert options["keepalive"] == 1
    # Probes begin after half the bound idle and all of them fit in the rest.
    assert options["idle"] + options["interval"] * options["count"] <= 6
    assert options["idle"] == 3


def test_zero_leaves_the_kernels_defaults(pg_with: pytest.MonkeyPatch) -> None:
    pg_with.setenv("INTERLOCK_PG_DEAD_LINK_MS", "0")
    settings.cache_clear()
    assert _socket_options()["user_timeout"] == 0
