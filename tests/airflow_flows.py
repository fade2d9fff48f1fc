"""What the Airflow integration tests share: a systems file for the harness's Airflow,
Interlock's API on the port the listener plugin posts to, flows to run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from textwrap import dedent
from typing import Any

import uvicorn
from airflow_harness import AirflowServer

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.operations import runs as ops
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher
from interlock.store.runs import RunFilter
from interlock.store.views import RunDetail

SECRET_ENV = "AIRFLOW_TEST_EVENTS_SECRET"


def write_systems(directory: Path, server: AirflowServer) -> Path:
    path = directory / "systems.yaml"
    path.write_text(dedent(f"""
        systems:
          {server.system}:
            url: {server.url}
            events_secret: {{env: {SECRET_ENV}}}
            timeout: 5
    """))
    return path


def start(source: str, dispatcher: Dispatcher, **inputs: Any) -> str:
    flow, _ = ops.register(dedent(source).lstrip())
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs=inputs,
                         dispatcher=dispatcher)


def node(detail: RunDetail, node_id: str) -> Any:
    return next(n for n in detail.nodes if n.id == node_id)


def wait_node(run_id: str, node_id: str, state: str, timeout: float = 60.0) -> RunDetail:
    deadline = time.monotonic() + timeout
    while True:
        detail = ops.get_run(run_id)
        if node(detail, node_id).state.value == state:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(f"{node_id} still {node(detail, node_id).state.value}")
        time.sleep(0.1)


def wait_triggered(namespace: str, flow_id: str, external_id: str, *, timeout: float,
                   why: str) -> str:
    """The run of a flow that an `after:` trigger started for the foreign run
    ``external_id``; fails with ``why`` when none appears within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        page = ops.list_runs(filters=RunFilter(namespace=namespace, flow_id=flow_id))
        fired = [r.id for r in page.runs
                 if ops.get_run(r.id).trigger.get("external_id") == external_id]
        if fired:
            return fired[0]
        assert time.monotonic() < deadline, why
        time.sleep(0.3)


@contextmanager
def push_api(port: int, dispatcher: Dispatcher,
             producer_token: str | None = None) -> Iterator[None]:
    """Interlock's API on 127.0.0.1:``port``, where the listener plugin posts events;
    ``producer_token`` (a harness's OpenLineage API key) is registered in the store first."""
    if producer_token is not None:
        with session_scope() as session:
            tokens.create(session, name="openlineage-producer", role=Role.PRODUCER,
                          namespace="*", created_by="tests", token=producer_token)
    server = uvicorn.Server(uvicorn.Config(create_app(dispatcher=dispatcher), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on port {port}")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
