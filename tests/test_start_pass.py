"""A start plans its run's first pass in its own transaction (`dispatch.controller.
plan_started`); if that pass raises, the start is made again without it and a worker plans
the run: one run, one `run.created`, the idempotency key spent once, nothing lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, Run, TaskKind
from interlock.store.transitions import LostRace
from tests.helpers import write_flow
from tests.test_hot_path import CHAIN, AtOnce

SCRIPTED = """
id: scripted
namespace: tests.hot
nodes:
  a: {uses: script, with: {command: "true"}}
  b: {uses: noop, needs: [a]}
"""


def _flow(tmp_path: Path, text: str = CHAIN) -> Any:
    flow, _ = ops.register(write_flow(tmp_path, text).read_text())
    return flow


def _created_records(run_id: str) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.target == f"runs/{run_id}", AuditRecord.action == "run.created")) or 0


def test_a_run_of_real_jobs_leaves_its_start_with_its_first_node_queued(
        store_url: str, tmp_path: Path) -> None:
    flow = _flow(tmp_path, SCRIPTED)
    dispatcher = AtOnce()
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=dispatcher, actor="test")
    assert [w.kind for w in dispatcher.sent] == [TaskKind.EXECUTE]  # no ADVANCE hop first
    detail = ops.get_run(run_id)
    assert detail.state is RunState.RUNNING
    assert {n.id: n.state for n in detail.nodes} == {"a": NodeState.QUEUED,
                                                      "b": NodeState.PENDING}


@pytest.mark.parametrize("failure", [RuntimeError("a fault in planning"),
                                     LostRace("a shared row changed")])
def test_a_failed_first_pass_leaves_the_run_to_a_worker(
        store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        failure: Exception) -> None:
    flow = _flow(tmp_path)
    calls: list[str] = []

    def failing(session: Any, loaded: Any) -> Any:
        calls.append(loaded.run.id)
        raise failure

    monkeypatch.setattr(ops, "plan_started", failing)
    dispatcher = AtOnce()
    run_id, created = ops.start_once(namespace=flow.namespace, flow_id=flow.id, inputs={},
                                     dispatcher=dispatcher, actor="test",
                                     idempotency_key="once")
    assert created and len(calls) == 1
    assert [w.kind for w in dispatcher.sent] == [TaskKind.ADVANCE]
    assert ops.get_run(run_id).state is RunState.PENDING
    with session_scope() as session:  # the failed try left nothing: one run, the one sent
        assert session.scalars(select(Run.id)).all() == [run_id]
    again, created_again = ops.start_once(namespace=flow.namespace, flow_id=flow.id,
                                          inputs={}, dispatcher=AtOnce(), actor="test",
                                          idempotency_key="once")
    assert (again, created_again) == (run_id, False)
    dispatcher.drain()  # the worker's pass
    assert ops.get_run(run_id).state is RunState.SUCCEEDED
    assert _created_records(run_id) == 1


def test_a_flow_that_does_not_exist_is_not_retried(store_url: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    real = ops._start

    def counted(request: Any, *, plan_now: bool) -> Any:
        calls.append(plan_now)
        return real(request, plan_now=plan_now)

    monkeypatch.setattr(ops, "_start", counted)
    with pytest.raises(Exception, match="is not registered"):
        ops.start_run(namespace="tests.hot", flow_id="missing", inputs={},
                      dispatcher=AtOnce(), actor="test")
    assert calls == [True]  # an error of the request, not of the pass: raised at once
