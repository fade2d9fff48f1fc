"""The store on SQLite and on the real PostgreSQL: migrations, revisions, runs, CAS, outbox."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from interlock import clock
from interlock.errors import Conflict, IllegalTransition
from interlock.operations import runs as ops
from interlock.spec.loader import parse_flow
from interlock.states import NodeState, RunState, SkipCause
from interlock.store import outbox
from interlock.store import runs as run_store
from interlock.store.db import MIGRATIONS, engine_for, session_scope, upgrade
from interlock.store.flows import get_revision, list_flows, list_revisions, register_flow
from interlock.store.tables import Attempt, NodeRun, Outbox, Run, StateEvent, TaskKind
from interlock.store.transitions import set_attempt_state, set_node_state, set_run_state

FLOW = dedent("""
    id: chain
    namespace: tests.store
    nodes:
      a: {uses: noop, with: {v: 1}}
      b: {uses: noop, needs: [a]}
      c: {uses: noop, needs: [b]}
""").lstrip()


def _revision_id(source: str = FLOW) -> int:
    flow = parse_flow(source)
    with session_scope() as s:
        return register_flow(s, flow=flow, source=source).id


def _new_run(source: str = FLOW, actor: str = "test") -> str:
    flow = parse_flow(source)
    with session_scope() as s:
        rev = register_flow(s, flow=flow, source=source)
        return run_store.create_run(s, revision=rev, inputs={}, trigger={"type": "test"},
                                    actor=actor)


def _events(run_id: str) -> list[StateEvent]:
    with session_scope() as s:
        return run_store.events_of(s, run_id)


def _node_state(run_id: str, node_id: str) -> str:
    with session_scope() as s:
        node = s.get(NodeRun, (run_id, node_id))
        assert node is not None
        return node.state


def _run_state(run_id: str) -> str:
    with session_scope() as s:
        run = s.get(Run, run_id)
        assert run is not None
        return run.state


def _add_attempt(run_id: str, node_id: str = "a", number: int = 1, key: str | None = None,
                 state: NodeState = NodeState.QUEUED) -> Attempt:
    with session_scope() as s:
        attempt = Attempt(run_id=run_id, node_id=node_id, number=number,
                          key=key or f"{run_id}.{node_id}.{number}", uses="noop",
                          state=state.value, params={}, outputs={}, created_at=clock.now())
        s.add(attempt)
        s.flush()
        return attempt


# --- migrations -------------------------------------------------------------------------


def test_migrations_create_every_table(store_url: str) -> None:
    engine = engine_for()
    inspector = inspect(engine)
    tables = set(inspector.get_table_names())
    assert {"flow_revisions", "runs", "node_runs", "attempts", "state_events", "outbox",
            "external_runs", "trigger_firings", "audit_log", "audit_head",
            "alembic_version"} <= tables
    unique_attempts = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("attempts")}
    unique_attempts |= {tuple(i["column_names"]) for i in inspector.get_indexes("attempts")
                        if i.get("unique")}
    assert ("key",) in unique_attempts
    assert ("run_id", "node_id", "number") in unique_attempts
    node_pk = inspector.get_pk_constraint("node_runs")["constrained_columns"]
    assert sorted(node_pk) == ["node_id", "run_id"]
    with engine.connect() as conn:
        newest = sorted(p.name[:4] for p in (MIGRATIONS / "versions").glob("0*.py"))[-1]
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest


def test_migrations_run_twice_are_a_no_op(store_url: str) -> None:
    engine = engine_for()
    run_id = _new_run()
    upgrade(engine)  # a second process starting up must not lose or duplicate anything
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    assert _run_state(run_id) == "pending"


# --- flow revisions ---------------------------------------------------------------------


def test_register_flow_revisions(store_url: str) -> None:
    first = _revision_id()
    assert _revision_id() == first  # unchanged source: same revision row
    changed = FLOW.replace("v: 1", "v: 2")
    second = _revision_id(changed)
    assert second != first
    other = FLOW.replace("id: chain", "id: other")
    _revision_id(other)
    with session_scope() as s:
        revs = list_revisions(s, namespace="tests.store", flow_id="chain")
        assert [r.revision for r in revs] == [1, 2]
        assert revs[0].digest != revs[1].digest
        assert revs[1].source == changed
        assert get_revision(s, namespace="tests.store", flow_id="chain").revision == 2
        assert get_revision(s, namespace="tests.store", flow_id="chain", revision=1).id == first
        newest = [(r.flow_id, r.revision) for r in list_flows(s)]
        assert newest == [("chain", 2), ("other", 1)]
    # Going back to the first source finds revision 1 again, not a third revision.
    assert _revision_id() == first


def test_get_revision_unknown_raises_not_found(store_url: str) -> None:
    from interlock.errors import NotFound
    _revision_id()
    with session_scope() as s, pytest.raises(NotFound, match="revision 9 is not registered"):
        get_revision(s, namespace="tests.store", flow_id="chain", revision=9)
    with session_scope() as s, pytest.raises(NotFound, match="`tests.store/nope`"):
        get_revision(s, namespace="tests.store", flow_id="nope")


# --- create_run ---------------------------------------------------------------------------


def test_create_run_makes_pending_nodes_an_event_and_one_advance(store_url: str) -> None:
    run_id = _new_run(actor="alice")
    with session_scope() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.state == "pending"
        assert (run.namespace, run.flow_id, run.revision) == ("tests.store", "chain", 1)
        nodes = list(s.scalars(select(NodeRun).where(NodeRun.run_id == run_id)))
        assert sorted(n.node_id for n in nodes) == ["a", "b", "c"]
        assert {n.state for n in nodes} == {"pending"}
        assert all(n.outputs == {} and n.uses == "noop" for n in nodes)
        rows = list(s.scalars(select(Outbox).where(Outbox.run_id == run_id)))
        assert [(r.kind, r.attempt_id) for r in rows] == [("advance", None)]
        assert rows[0].available_at > rows[0].created_at  # leased, not overdue at once
    events = _events(run_id)
    assert [(e.entity, e.from_state, e.to_state, e.actor) for e in events] == \
        [("run", None, "pending", "alice")]
    assert events[0].reason == "started by test"


# --- compare-and-set transitions ----------------------------------------------------------


def test_set_node_state_from_expected_state_appends_event(store_url: str) -> None:
    run_id = _new_run()
    with session_scope() as s:
        assert set_node_state(s, run_id=run_id, node_id="a", expected=NodeState.PENDING,
                              to=NodeState.QUEUED, actor="bob", reason="go")
    assert _node_state(run_id, "a") == "queued"
    assert _node_state(run_id, "b") == "pending"  # only the addressed node
    last = _events(run_id)[-1]
    assert (last.entity, last.node_id, last.attempt, last.from_state, last.to_state,
            last.actor, last.reason) == ("node", "a", None, "pending", "queued", "bob", "go")
    assert last.at.tzinfo is not None


def test_set_node_state_returns_false_when_not_in_expected_state(store_url: str) -> None:
    run_id = _new_run()
    before = len(_events(run_id))
    with session_scope() as s:
        # The row is PENDING, not QUEUED: a lost race, reported as False.
        assert not set_node_state(s, run_id=run_id, node_id="a", expected=NodeState.QUEUED,
                                  to=NodeState.RUNNING, actor="x")
        assert not set_node_state(s, run_id=run_id, node_id="ghost", expected=NodeState.PENDING,
                                  to=NodeState.QUEUED, actor="x")
    assert _node_state(run_id, "a") == "pending"
    assert len(_events(run_id)) == before


def test_set_node_state_illegal_transition_leaves_row(store_url: str) -> None:
    run_id = _new_run()
    before = len(_events(run_id))
    with session_scope() as s:
        with pytest.raises(IllegalTransition, match="node state cannot go from pending to "
                                                    "succeeded"):
            set_node_state(s, run_id=run_id, node_id="a", expected=NodeState.PENDING,
                           to=NodeState.SUCCEEDED, actor="x")
    assert _node_state(run_id, "a") == "pending"
    assert len(_events(run_id)) == before


def test_set_run_state_cas(store_url: str) -> None:
    run_id = _new_run()
    with session_scope() as s:
        assert set_run_state(s, run_id=run_id, expected=RunState.PENDING, to=RunState.RUNNING,
                             actor="planner", reason="planned")
        # Second time the row is RUNNING, so the same CAS loses.
        assert not set_run_state(s, run_id=run_id, expected=RunState.PENDING,
                                 to=RunState.RUNNING, actor="planner", reason="planned")
    assert _run_state(run_id) == "running"
    runs = [e for e in _events(run_id) if e.entity == "run"]
    assert [(e.from_state, e.to_state, e.actor, e.reason) for e in runs] == \
        [(None, "pending", "test", "started by test"), ("pending", "running", "planner", "planned")]
    with session_scope() as s:
        assert set_run_state(s, run_id=run_id, expected=RunState.RUNNING, to=RunState.SUCCEEDED,
                             actor="planner", reason="done", finished_at=clock.now())
    with session_scope() as s:
        run = s.get(Run, run_id)
        assert run is not None and run.state == "succeeded" and run.reason == "done"
        assert run.finished_at is not None and run.finished_at.tzinfo is not None
    with session_scope() as s, pytest.raises(IllegalTransition, match="run state cannot go from "
                                                                      "succeeded to running"):
        set_run_state(s, run_id=run_id, expected=RunState.SUCCEEDED, to=RunState.RUNNING,
                      actor="x")
    assert _run_state(run_id) == "succeeded"
    assert len([e for e in _events(run_id) if e.entity == "run"]) == 3


def test_set_attempt_state_cas(store_url: str) -> None:
    run_id = _new_run()
    attempt = _add_attempt(run_id)
    with session_scope() as s:
        assert set_attempt_state(s, attempt=attempt, expected=NodeState.QUEUED,
                                 to=NodeState.RUNNING, actor="executor", reason="submitted",
                                 remote_status="accepted")
        assert not set_attempt_state(s, attempt=attempt, expected=NodeState.QUEUED,
                                     to=NodeState.FAILED, actor="executor")
        with pytest.raises(IllegalTransition):
            set_attempt_state(s, attempt=attempt, expected=NodeState.RUNNING,
                              to=NodeState.PENDING, actor="executor")
    with session_scope() as s:
        stored = s.get(Attempt, attempt.id)
        assert stored is not None
        assert (stored.state, stored.remote_status) == ("running", "accepted")
    attempts = [e for e in _events(run_id) if e.entity == "attempt"]
    assert [(e.node_id, e.attempt, e.from_state, e.to_state, e.actor, e.reason)
            for e in attempts] == [("a", 1, "queued", "running", "executor", "submitted")]


def test_concurrent_cas_on_one_row_has_exactly_one_winner(store_url: str) -> None:
    run_id = _new_run()
    rounds = [("a", NodeState.PENDING, NodeState.QUEUED),
              ("b", NodeState.PENDING, NodeState.SKIPPED),
              ("c", NodeState.PENDING, NodeState.CANCELLED)]
    for node_id, expected, to in rounds:
        barrier = threading.Barrier(2, timeout=20)
        results: dict[str, bool] = {}
        errors: list[BaseException] = []

        def contend(actor: str, node_id: str = node_id, expected: NodeState = expected,
                    to: NodeState = to, barrier: threading.Barrier = barrier,
                    results: dict[str, bool] = results,
                    errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                with session_scope() as s:
                    cause = SkipCause.UPSTREAM if to is NodeState.SKIPPED else None
                    results[actor] = set_node_state(s, run_id=run_id, node_id=node_id,
                                                    expected=expected, to=to, actor=actor,
                                                    skip_cause=cause)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert sorted(results.values()) == [False, True], results
        winner = next(k for k, v in results.items() if v)
        node_events = [e for e in _events(run_id) if e.node_id == node_id]
        assert [(e.to_state, e.actor) for e in node_events] == [(to.value, winner)]
        assert _node_state(run_id, node_id) == to.value


def test_concurrent_run_cas_has_exactly_one_winner(store_url: str) -> None:
    run_id = _new_run()
    barrier = threading.Barrier(2, timeout=20)
    results: dict[str, bool] = {}
    targets = {"canceller": RunState.CANCELLING, "planner": RunState.RUNNING}

    def contend(actor: str) -> None:
        barrier.wait()
        with session_scope() as s:
            results[actor] = set_run_state(s, run_id=run_id, expected=RunState.PENDING,
                                           to=targets[actor], actor=actor)

    threads = [threading.Thread(target=contend, args=(a,)) for a in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results.values()) == [False, True]
    winner = next(k for k, v in results.items() if v)
    assert _run_state(run_id) == targets[winner].value
    run_events = [e for e in _events(run_id) if e.entity == "run"]
    assert [(e.to_state, e.actor) for e in run_events] == \
        [("pending", "test"), (targets[winner].value, winner)]


# --- outbox -------------------------------------------------------------------------------


def _outbox_row(kind: TaskKind, run_id: str, available_at: datetime,
                attempt_id: int | None = None) -> int:
    with session_scope() as s:
        row = Outbox(kind=kind.value, run_id=run_id, attempt_id=attempt_id,
                     created_at=clock.now(), available_at=available_at, sends=1)
        s.add(row)
        s.flush()
        return row.id


def test_claim_overdue_returns_only_due_rows_and_extends_their_lease(store_url: str) -> None:
    now = clock.now()
    due = _outbox_row(TaskKind.ADVANCE, "r-due", now - timedelta(seconds=5))
    due_exec = _outbox_row(TaskKind.EXECUTE, "r-due", now - timedelta(seconds=1), attempt_id=7)
    future = _outbox_row(TaskKind.ADVANCE, "r-later", now + timedelta(minutes=5))
    with session_scope() as s:
        claimed = outbox.claim_overdue(s)
    assert claimed == [outbox.Work(TaskKind.ADVANCE, "r-due"),
                       outbox.Work(TaskKind.EXECUTE, "r-due", 7)]
    with session_scope() as s:
        rows = {r.id: r for r in s.scalars(select(Outbox))}
    after = clock.now()
    assert rows[due].available_at > after and rows[due_exec].available_at > after
    assert rows[future].available_at == now + timedelta(minutes=5)  # untouched
    assert (rows[due].sends, rows[due_exec].sends, rows[future].sends) == (2, 2, 1)
    with session_scope() as s:
        assert outbox.claim_overdue(s) == []  # leased again: not claimed twice


def test_claim_overdue_honours_limit_in_id_order(store_url: str) -> None:
    past = clock.now() - timedelta(seconds=30)
    for i in range(5):
        _outbox_row(TaskKind.CANCEL, f"r{i}", past)
    with session_scope() as s:
        first = outbox.claim_overdue(s, limit=2)
    with session_scope() as s:
        rest = outbox.claim_overdue(s, limit=10)
    assert [w.run_id for w in first] == ["r0", "r1"]
    assert [w.run_id for w in rest] == ["r2", "r3", "r4"]


def test_no_task_kind_is_dead_and_a_retired_poll_row_is_skipped(store_url: str) -> None:
    """Every TaskKind has a handler case; polls go out as PollBatch, never as outbox rows."""
    handlers = Path(__file__).resolve().parents[1] / "src/interlock/dispatch/handlers.py"
    cases = set(re.findall(r"case TaskKind\.(\w+):", handlers.read_text()))
    assert cases == {kind.name for kind in TaskKind}
    assert "poll" not in {kind.value for kind in TaskKind}
    past = clock.now() - timedelta(seconds=30)
    with session_scope() as s:  # as a row written before the kind was retired would be
        s.add(Outbox(kind="poll", run_id="old", created_at=past, available_at=past, sends=1))
    _outbox_row(TaskKind.ADVANCE, "r1", past)
    with session_scope() as s:
        assert outbox.claim_overdue(s) == [outbox.Work(TaskKind.ADVANCE, "r1")]


def test_outbox_add_is_leased_so_not_overdue_at_once(store_url: str) -> None:
    with session_scope() as s:
        outbox.add(s, outbox.Work(TaskKind.ADVANCE, "fresh"))
        outbox.add(s, outbox.Work(TaskKind.ADVANCE, "later"), delay=60)
    with session_scope() as s:
        assert outbox.claim_overdue(s) == []
        rows = {r.run_id: r for r in s.scalars(select(Outbox))}
    assert rows["later"].available_at - rows["fresh"].available_at >= timedelta(seconds=59)


def test_outbox_complete_deletes_only_matching_rows(store_url: str) -> None:
    at = clock.now()
    _outbox_row(TaskKind.ADVANCE, "r1", at)
    _outbox_row(TaskKind.EXECUTE, "r1", at, attempt_id=5)
    _outbox_row(TaskKind.EXECUTE, "r1", at, attempt_id=6)
    _outbox_row(TaskKind.ADVANCE, "r2", at)
    _outbox_row(TaskKind.ADVANCE, "r1", at)  # a duplicate send of the same work

    def remaining() -> list[tuple[str, str, int | None]]:
        with session_scope() as s:
            return sorted((r.kind, r.run_id, r.attempt_id) for r in s.scalars(select(Outbox)))

    with session_scope() as s:
        outbox.complete(s, kind=TaskKind.EXECUTE, run_id="r1", attempt_id=5)
    assert remaining() == [("advance", "r1", None), ("advance", "r1", None),
                           ("advance", "r2", None), ("execute", "r1", 6)]
    with session_scope() as s:
        outbox.complete(s, kind=TaskKind.ADVANCE, run_id="r1")
    assert remaining() == [("advance", "r2", None), ("execute", "r1", 6)]
    with session_scope() as s:
        outbox.complete(s, kind=TaskKind.CANCEL, run_id="r2")  # nothing of that kind
    assert remaining() == [("advance", "r2", None), ("execute", "r1", 6)]


# --- attempts -----------------------------------------------------------------------------


def test_duplicate_attempt_key_is_refused(store_url: str) -> None:
    run_id = _new_run()
    _add_attempt(run_id, "a", 1, key="same-key")
    with pytest.raises(IntegrityError):
        _add_attempt(run_id, "b", 1, key="same-key")
    with pytest.raises(IntegrityError):  # and the (run, node, number) triple is unique too
        _add_attempt(run_id, "a", 1, key="other-key")
    with session_scope() as s:
        keys = list(s.scalars(select(Attempt.key).where(Attempt.run_id == run_id)))
    assert keys == ["same-key"]


# --- cancel and retry requests ------------------------------------------------------------


def _finish(run_id: str, to: RunState) -> None:
    with session_scope() as s:
        assert set_run_state(s, run_id=run_id, expected=RunState.PENDING, to=RunState.RUNNING,
                             actor="t")
        assert set_run_state(s, run_id=run_id, expected=RunState.RUNNING, to=to, actor="t",
                             finished_at=clock.now())


@pytest.mark.parametrize("final", [RunState.SUCCEEDED, RunState.FAILED])
def test_request_cancel_on_finished_run_is_a_conflict(store_url: str, final: RunState) -> None:
    run_id = _new_run()
    _finish(run_id, final)
    events = len(_events(run_id))
    with session_scope() as s, pytest.raises(
            Conflict, match=f"run `{run_id}` is {final.value}; only pending or running"):
        run_store.request_cancel(s, run_id=run_id, actor="me")
    assert _run_state(run_id) == final.value
    assert len(_events(run_id)) == events
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)
                        .where(Outbox.run_id == run_id)) == 1  # only create_run's row


def test_request_cancel_on_pending_run(store_url: str) -> None:
    run_id = _new_run()
    with session_scope() as s:
        run_store.request_cancel(s, run_id=run_id, actor="me")
    assert _run_state(run_id) == "cancelling"
    last = _events(run_id)[-1]
    assert (last.from_state, last.to_state, last.actor, last.reason) == \
        ("pending", "cancelling", "me", "cancel requested")
    with session_scope() as s:
        kinds = list(s.scalars(select(Outbox.kind).where(Outbox.run_id == run_id)))
    assert kinds == ["advance", "advance"]


def test_request_retry_of_a_running_run_is_a_conflict(store_url: str) -> None:
    run_id = _new_run()
    with session_scope() as s, pytest.raises(Conflict, match="only failed or cancelled"):
        run_store.request_retry(s, run_id=run_id, actor="me")
    assert _run_state(run_id) == "pending"


SKIPS = dedent("""
    id: skips
    namespace: tests.store
    nodes:
      bad: {uses: noop}
      gate: {uses: noop, if: "false"}
      down: {uses: noop, needs: [bad]}
""").lstrip()


def test_retry_reopens_by_skip_cause_not_by_reason_prose(store_url: str) -> None:
    """`retry` reads the persisted SkipCause. The reasons here are swapped on purpose: a
    decision made from the planner's prose would re-open `gate` and leave `down` skipped."""
    run_id = _new_run(SKIPS)
    n = NodeState
    with session_scope() as s:
        assert set_run_state(s, run_id=run_id, expected=RunState.PENDING, to=RunState.RUNNING,
                             actor="t")
        for node_id, to, reason, cause in [
                ("bad", n.FAILED, "attempt 1 failed", None),
                ("gate", n.SKIPPED, "upstream `bad` failed", SkipCause.CONDITION),
                ("down", n.SKIPPED, "`if:` is false", SkipCause.UPSTREAM)]:
            assert set_node_state(s, run_id=run_id, node_id=node_id, expected=n.PENDING, to=to,
                                  actor="t", reason=reason, skip_cause=cause)
        assert set_run_state(s, run_id=run_id, expected=RunState.RUNNING, to=RunState.FAILED,
                             actor="t", finished_at=clock.now())
    with session_scope() as s:
        assert sorted(run_store.request_retry(s, run_id=run_id, actor="me")) == ["bad", "down"]
    with session_scope() as s:
        rows = {r.node_id: (r.state, r.skip_cause)
                for r in s.scalars(select(NodeRun).where(NodeRun.run_id == run_id))}
    assert rows == {"bad": ("pending", None), "gate": ("skipped", "condition"),
                    "down": ("pending", None)}  # re-opening clears the cause


@pytest.mark.parametrize(("to", "cause"), [(NodeState.SKIPPED, None),
                                           (NodeState.FAILED, SkipCause.UPSTREAM)])
def test_a_skip_cause_goes_with_skipped_and_only_with_it(store_url: str, to: NodeState,
                                                        cause: SkipCause | None) -> None:
    run_id = _new_run()
    with session_scope() as s, pytest.raises(ValueError, match="skip cause goes with SKIPPED"):
        set_node_state(s, run_id=run_id, node_id="a", expected=NodeState.PENDING, to=to,
                       actor="t", skip_cause=cause)
    assert _node_state(run_id, "a") == "pending"


# --- listing ------------------------------------------------------------------------------


def test_list_runs_newest_first_with_created_at_id_cursor(store_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    base = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    # Five runs share one timestamp: the id must break the tie, or a page loses rows.
    times = [base, base + timedelta(seconds=1)] + [base + timedelta(seconds=2)] * 5 \
        + [base + timedelta(seconds=3)]
    ids = []
    for at in times:
        monkeypatch.setattr(clock, "now", lambda at=at: at)
        ids.append(_new_run())
    monkeypatch.undo()
    expected = [rid for _, rid in sorted(zip(times, ids, strict=True), reverse=True)]

    seen: list[str] = []
    before = None
    pages = 0
    while True:
        with session_scope() as s:
            page = run_store.list_runs(s, filters=run_store.RunFilter(), limit=3, before=before)
        if not page:
            break
        pages += 1
        seen += [r.id for r in page]
        before = (page[-1].created_at, page[-1].id)
        assert pages < 10
    assert seen == expected
    assert pages == 3

    # The same through operations, whose cursor is an opaque string.
    seen_ops: list[str] = []
    cursor = None
    while True:
        result = ops.list_runs(filters=run_store.RunFilter(), limit=3, cursor=cursor)
        seen_ops += [r.id for r in result.runs]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert seen_ops == expected


def test_list_runs_filters(store_url: str) -> None:
    first = _new_run()
    other = _new_run(FLOW.replace("namespace: tests.store", "namespace: tests.other"))
    _finish(first, RunState.FAILED)
    with session_scope() as s:
        created = s.get(Run, other)
        assert created is not None
        other_at = created.created_at

        def ids(**kw: object) -> list[str]:
            return [r.id for r in run_store.list_runs(s, filters=run_store.RunFilter(**kw),
                                                      limit=10)]

        assert ids() == [other, first]
        assert ids(state=RunState.FAILED) == [first]
        assert ids(state=RunState.PENDING) == [other]
        assert ids(namespace="tests.other") == [other]
        assert ids(flow_id="chain") == [other, first]
        assert ids(flow_id="nope") == []
        assert ids(created_after=other_at) == [other]  # inclusive
        assert ids(created_before=other_at) == [first]  # exclusive
        # The same instant written in another zone selects the same rows.
        plus5 = timezone(timedelta(hours=5))
        assert ids(created_after=other_at.astimezone(plus5)) == [other]


# --- time zones ---------------------------------------------------------------------------


def test_datetimes_come_back_utc_aware(store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plus2 = timezone(timedelta(hours=2))
    written = datetime(2031, 6, 1, 14, 30, 15, 123456, tzinfo=plus2)
    monkeypatch.setattr(clock, "now", lambda: written)
    run_id = _new_run()
    monkeypatch.undo()
    with session_scope() as s:
        run = s.get(Run, run_id)
        assert run is not None
        for value in (run.created_at, run.updated_at):
            assert value.tzinfo is not None
            assert value.utcoffset() == timedelta(0)
            assert value == written
            assert value.hour == 12  # converted to UTC, not stored as wall time
        event = run_store.events_of(s, run_id)[0]
        assert event.at == written and event.at.utcoffset() == timedelta(0)
    detail = ops.get_run(run_id)
    assert detail.created_at == written and detail.created_at.tzinfo is not None


def test_naive_datetime_is_refused_by_the_store(store_url: str) -> None:
    from sqlalchemy.exc import StatementError
    with pytest.raises((ValueError, StatementError), match="naive datetime"):
        _outbox_row(TaskKind.ADVANCE, "naive", datetime(2030, 1, 1))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


def test_a_store_that_was_down_at_first_use_works_once_it_is_up(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    from interlock.store.db import dispose_all, engine_for, session_scope
    down = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    with pytest.raises(OperationalError):
        engine_for(down)
    with pytest.raises(OperationalError):  # tried again, not a stale half-made engine
        engine_for(down)
    up = f"sqlite:///{tmp_path / 'up.db'}"
    with session_scope(up) as session:
        assert session.execute(text("select 1")).scalar() == 1
    dispose_all()
