"""Helpers shared by tests: write flows, wait for runs."""

from __future__ import annotations

import time
from pathlib import Path
from textwrap import dedent
from typing import Any

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.adapters.contract import Adapter, Handle, Observation
from interlock.operations import runs as ops
from interlock.states import RUN_TERMINAL
from interlock.store import flows as flow_store
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.views import RunDetail


def write_flow(directory: Path, text: str, name: str = "flow.yaml") -> Path:
    path = directory / name
    path.write_text(dedent(text).lstrip(), encoding="utf-8")
    return path


def pending_run(namespace: str, flow_id: str, inputs: dict[str, Any] | None = None) -> str:
    """A run of a registered flow, pending, its first pass left to a worker (as a trigger
    creates one). A start (`operations.runs`) plans the first pass at once: a run of
    `noop` nodes would already have ended."""
    with session_scope() as session:
        revision = flow_store.get_revision(session, namespace=namespace, flow_id=flow_id)
        return run_store.create_run(session, revision=revision, inputs=inputs or {},
                                    trigger={"type": "manual", "by": "test"}, actor="test")


def wait_run(run_id: str, timeout: float = 60.0) -> RunDetail:
    """Poll the store until the run is terminal; fail the test with its state if not."""
    deadline = time.monotonic() + timeout
    detail = ops.get_run(run_id)
    while detail.state not in RUN_TERMINAL:
        if time.monotonic() > deadline:
            states = {n.id: n.state.value for n in detail.nodes}
            raise AssertionError(f"run {run_id} still {detail.state.value} after {timeout}s: "
                                 f"{states}")
        time.sleep(0.05)
        detail = ops.get_run(run_id)
    return detail


def run_polled(source: str, timeout: float = 300.0) -> RunDetail:
    """Register ``source``, run it once on an embedded dispatcher with the periodic jobs
    (the polls of foreign systems) running, and wait for its end."""
    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations.runtime import periodic_jobs

    registered, _ = ops.register(source)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        run_id = ops.start_run(namespace=registered.namespace, flow_id=registered.id,
                               inputs={}, dispatcher=dispatcher)
        return wait_run(run_id, timeout=timeout)
    finally:
        dispatcher.close()


def wait_finished(adapter: Adapter, handle: Handle, timeout: float = 30.0) -> Observation:
    """Poll one handle through its adapter until the observation is final."""
    deadline = time.monotonic() + timeout
    while True:
        (obs,) = adapter.poll([handle])
        if obs.finished:
            return obs
        if time.monotonic() > deadline:
            raise AssertionError(f"still {obs.remote_status!r} after {timeout}s")
        time.sleep(0.05)


def bearer(role: Role = Role.ADMIN, namespace: str = "*", name: str | None = None,
           token: str | None = None) -> dict[str, str]:
    """An `Authorization` header with a new API token of ``role`` on ``namespace``, made in
    the store the test points at (each call makes a token named after its role and scope,
    unless ``name`` is given)."""
    name = name or f"test-{role.value}-{namespace.replace('*', 'all')}-{tokens.mint()[4:12]}"
    with session_scope() as session:
        made, _ = tokens.create(session, name=name, role=role, namespace=namespace,
                                created_by="tests", token=token)
    return {"Authorization": f"Bearer {made}"}
