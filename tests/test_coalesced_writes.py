"""A planning pass writes each run and node row once (`transitions.coalesced_writes`) and
chains its audit records at commit (`audit.record_at_commit`); neither may lose a race it
would have lost at once, nor hide a change from a read in the same transaction."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, NodeRun, Run, StateEvent
from interlock.store.transitions import (
    LostRace,
    batched_events,
    coalesced_writes,
    set_node_state,
    set_run_state,
)
from tests.helpers import pending_run, write_flow

FLOW = """
id: pair
namespace: tests.coalesce
nodes:
  a: {uses: noop}
  b: {uses: noop, needs: [a]}
"""


def _pending_run(tmp_path: Path) -> str:
    flow, _ = ops.register(write_flow(tmp_path, FLOW).read_text())
    return pending_run(flow.namespace, flow.id)


def _node_state(run_id: str, node_id: str) -> str:
    with session_scope() as session:
        return session.scalar(select(NodeRun.state).where(NodeRun.run_id == run_id,
                                                          NodeRun.node_id == node_id)) or ""


def _queue_then_succeed(session: object, run_id: str, node_id: str) -> None:
    set_node_state(session, run_id=run_id, node_id=node_id, expected=NodeState.PENDING,
                   to=NodeState.QUEUED, actor="test")
    set_node_state(session, run_id=run_id, node_id=node_id, expected=NodeState.QUEUED,
                   to=NodeState.SUCCEEDED, actor="test", outputs={"v": 1})


def test_two_changes_of_a_row_write_it_once_and_record_both_events(
        store_url: str, tmp_path: Path) -> None:
    run_id = _pending_run(tmp_path)
    with session_scope() as session, batched_events(session), coalesced_writes(session):
        _queue_then_succeed(session, run_id, "a")
        # A read in the block sees what the block changed (written before the read).
        assert session.scalar(select(NodeRun.state).where(
            NodeRun.run_id == run_id, NodeRun.node_id == "a")) == NodeState.SUCCEEDED.value
    assert _node_state(run_id, "a") == NodeState.SUCCEEDED.value
    with session_scope() as session:
        events = session.execute(select(StateEvent.from_state, StateEvent.to_state).where(
            StateEvent.run_id == run_id, StateEvent.node_id == "a")
            .order_by(StateEvent.id)).all()
    assert [tuple(e) for e in events] == [("pending", "queued"), ("queued", "succeeded")]


def test_a_row_changed_under_the_block_is_a_lost_race_and_nothing_is_written(
        store_url: str, tmp_path: Path) -> None:
    run_id = _pending_run(tmp_path)
    with pytest.raises(LostRace), session_scope() as session, coalesced_writes(session):
        _queue_then_succeed(session, run_id, "a")
        # Another writer (here: a plain update in the same transaction, as one that
        # committed first would look) moves the row before the block writes it.
        session.connection().execute(update(NodeRun.__table__).where(
            NodeRun.run_id == run_id, NodeRun.node_id == "a").values(state="skipped"))
    assert _node_state(run_id, "a") == NodeState.PENDING.value  # rolled back, all of it


def test_a_lost_race_swallowed_inside_the_block_still_fails_it(
        store_url: str, tmp_path: Path) -> None:
    run_id = _pending_run(tmp_path)
    with pytest.raises(LostRace), session_scope() as session, coalesced_writes(session):
        set_node_state(session, run_id=run_id, node_id="a", expected=NodeState.RUNNING,
                       to=NodeState.SUCCEEDED, actor="test")  # the row is pending, not running
        try:
            session.execute(select(NodeRun.state))  # the write goes first, and fails
        except LostRace:
            pass  # a careless caller: the block's end raises again
    assert _node_state(run_id, "a") == NodeState.PENDING.value


def test_a_change_from_a_state_the_block_did_not_leave_is_refused_at_once(
        store_url: str, tmp_path: Path) -> None:
    run_id = _pending_run(tmp_path)
    with pytest.raises(LostRace, match="expected running"), session_scope() as session, \
            coalesced_writes(session):
        set_node_state(session, run_id=run_id, node_id="a", expected=NodeState.PENDING,
                       to=NodeState.QUEUED, actor="test")
        set_node_state(session, run_id=run_id, node_id="a", expected=NodeState.RUNNING,
                       to=NodeState.SUCCEEDED, actor="test")


def test_run_records_are_chained_at_commit_and_roll_back_with_it(
        store_url: str, tmp_path: Path) -> None:
    run_id = _pending_run(tmp_path)

    def targets() -> list[str]:
        with session_scope() as session:
            return list(session.scalars(select(AuditRecord.action).where(
                AuditRecord.target == f"runs/{run_id}").order_by(AuditRecord.seq)))

    assert targets() == ["run.created"]
    with pytest.raises(RuntimeError), session_scope() as session:
        set_run_state(session, run_id=run_id, expected=RunState.PENDING, to=RunState.RUNNING,
                      actor="test")
        raise RuntimeError("the change fails after its record")
    assert targets() == ["run.created"]
    with session_scope() as session:
        set_run_state(session, run_id=run_id, expected=RunState.PENDING, to=RunState.RUNNING,
                      actor="test")
        # Not chained before the commit: nothing in the trail yet, in this transaction.
        assert session.scalar(select(AuditRecord.seq).where(
            AuditRecord.target == f"runs/{run_id}", AuditRecord.action == "run.state")) is None
        with session.begin_nested():  # a savepoint: the record is chained at once, with it
            set_run_state(session, run_id=run_id, expected=RunState.RUNNING,
                          to=RunState.SUCCEEDED, actor="test", finished_at=None)
    assert targets() == ["run.created", "run.state", "run.state"]
    with session_scope() as session:
        states = session.scalars(select(AuditRecord.after).where(
            AuditRecord.target == f"runs/{run_id}", AuditRecord.action == "run.state")
            .order_by(AuditRecord.seq)).all()
        assert session.scalar(select(Run.state).where(Run.id == run_id)) == "succeeded"
    # The savepoint's record joined the chain first, then the commit's: the order in which
    # records join the chain, not the order they were written.
    assert {s["state"] for s in states} == {"running", "succeeded"}
    with session_scope() as session:
        assert audit.verify(session).ok
