"""Pytest fixtures for a real Apache Airflow (registered from conftest.py via pytest_plugins).

``airflow_server`` (session): one ``airflow standalone`` with the test DAGs and the Interlock
listener plugin; the four manual test DAGs are unpaused (``interlock_daily`` stays paused).
Set ``INTERLOCK_SKIP_AIRFLOW=1`` to skip the tests that need it; any other problem fails
loudly with the tail of Airflow's log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from airflow_harness import UNPAUSED_DAGS, AirflowServer, EventReceiver, ensure_venv


@pytest.fixture(scope="session")
def airflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowServer]:
    if os.environ.get("INTERLOCK_SKIP_AIRFLOW") == "1":
        pytest.skip("INTERLOCK_SKIP_AIRFLOW=1")
    server = AirflowServer(tmp_path_factory.mktemp("airflow-home"), ensure_venv())
    # stop() is also registered with atexit by start(), for interrupted sessions.
    try:
        server.start()
        server.wait_healthy(240)
        for dag_id in UNPAUSED_DAGS:
            server.unpause(dag_id)
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def airflow_events(airflow_server: AirflowServer) -> Iterator[EventReceiver]:
    """Records what the listener plugin POSTs (binds the server's ``events_port``)."""
    with EventReceiver(airflow_server.events_port) as receiver:
        yield receiver
