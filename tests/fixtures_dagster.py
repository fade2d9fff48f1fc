"""Pytest fixtures for a real Dagster (registered from conftest.py via pytest_plugins).

``dagster_server`` (session): one ``dagster dev`` (webserver, daemon, code server) with the test
definitions of ``tests/dagster/defs.py``. Set ``INTERLOCK_SKIP_DAGSTER=1`` to skip the tests
that need it; any other problem fails loudly with the tail of Dagster's log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from dagster_harness import DagsterServer, ensure_venv


@pytest.fixture(scope="session")
def dagster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterServer]:
    if os.environ.get("INTERLOCK_SKIP_DAGSTER") == "1":
        pytest.skip("INTERLOCK_SKIP_DAGSTER=1")
    server = DagsterServer(tmp_path_factory.mktemp("dagster-home"), ensure_venv())
    # stop() is also registered with atexit by start(), for interrupted sessions.
    try:
        server.start()
        server.wait_healthy(180)
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()
