"""A vote, the gate's timer and the run's cancel racing at the deadline give exactly one
outcome, hundreds of times over, on the real PostgreSQL (the kestra#18507 case: a manual
resume resumed again by the leftover timer)."""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.dispatch.controller import advance
from interlock.errors import Conflict
from interlock.operations import approvals as approval_ops
from interlock.operations import runs as ops
from interlock.states import ApprovalState
from interlock.store import approvals as store
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.tables import ApprovalRequest, Attempt, AuditRecord

NS = "race"
REPEATS = int(os.environ.get("RACES", "200"))
TIMEOUT_S = 0.06
FLOW = f"""
id: race
namespace: {NS}
nodes:
  go:
    uses: noop
    approval: {{subject: race, timeout: {int(TIMEOUT_S * 1000)}ms,
                rules: [{{role: approver}}]}}
"""


class Null:
    def send(self, *_: Any, **__: Any) -> None:
        return None


def _vote(request_id: str, principal: Any, results: dict[str, str]) -> None:
    try:
        approval_ops.vote(request_id, principal=principal, option="approve", inputs={},
                          comment="race", dispatcher=Null())
        results["vote"] = "ok"
    except Conflict as exc:
        results["vote"] = f"refused: {exc}"


def _cancel(run_id: str, results: dict[str, str]) -> None:
    try:
        ops.cancel_run(run_id, dispatcher=Null())
        results["cancel"] = "ok"
    except Conflict:
        results["cancel"] = "refused"


def _race_once(principal: Any, with_cancel: bool,
               rng: random.Random) -> tuple[str, dict[str, str]]:
    run_id = ops.start_run(namespace=NS, flow_id="race", inputs={}, dispatcher=Null(),
                           actor="user:starter")
    advance(run_id, dispatcher=Null())  # opens the request
    with session_scope() as session:
        row = run_store.load(session, run_id).approvals["go"]
        request_id, deadline = row.id, row.deadline
    assert deadline is not None
    results: dict[str, str] = {}
    jobs = [lambda: _vote(request_id, principal, results),
            lambda: advance(run_id, dispatcher=Null())]  # the timer's pass
    if with_cancel:
        jobs.append(lambda: _cancel(run_id, results))
    barrier = threading.Barrier(len(jobs))

    def at_deadline(job: Any) -> None:
        barrier.wait()
        job()

    # Around the deadline: a few milliseconds before it, at it, or just after.
    offset = rng.uniform(-0.03, 0.004)
    time.sleep(max(0.0, deadline.timestamp() + offset - time.time()))
    threads = [threading.Thread(target=at_deadline, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    time.sleep(max(0.0, deadline.timestamp() + 0.01 - time.time()))
    for _ in range(3):  # whatever is left to plan (the timer, the cancel's pass, the release)
        advance(run_id, dispatcher=Null())
    return run_id, results | {"request": request_id}


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_vote_timer_and_cancel_give_exactly_one_outcome(store_url: str) -> None:
    ops.register(FLOW, actor="user:author")
    with session_scope() as session:
        token, _ = tokens.create(session, name="racer", role=Role.APPROVER, namespace=NS,
                                 created_by="tests")
        principal, _ = tokens.authenticate(session, token)
    outcomes: Counter[str] = Counter()
    rng = random.Random(14)
    for i in range(REPEATS):
        run_id, results = _race_once(principal, with_cancel=i % 2 == 1, rng=rng)
        with session_scope() as session:
            row = store.get(session, results["request"])
            assert row is not None
            state = ApprovalState(row.state)
            decided = session.scalar(select(func.count()).select_from(AuditRecord).where(
                AuditRecord.target == f"approvals/{row.id}",
                AuditRecord.action == "approval.state"))
            attempts = session.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.run_id == run_id))
            votes = len(store.votes_of(session, row.id))
        outcomes[state.value] += 1
        # One compare-and-set decided it, once; the vote stands exactly when it won.
        assert state in {ApprovalState.APPROVED, ApprovalState.TIMED_OUT,
                         ApprovalState.CANCELLED}, (i, results)
        assert decided == 1, (i, state, results)
        assert (results["vote"] == "ok") is (state is ApprovalState.APPROVED), (i, results)
        assert votes == (1 if state is ApprovalState.APPROVED else 0), (i, results)
        # Work is released only by an approval, and at most once.
        assert attempts <= (1 if state is ApprovalState.APPROVED else 0), (i, state, results)
    print(f"outcomes over {REPEATS} races: {dict(outcomes)}")
    assert len(outcomes) >= 2, f"the race never raced: {dict(outcomes)}"
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ApprovalRequest)) == REPEATS
