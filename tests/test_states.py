"""The transition tables, checked pair by pair against a copy written out here on purpose.

A change to the table in `interlock.states` must be made here too: the two copies are
compared over every (from, to) pair, so a transition cannot be added or removed by accident.
"""

from __future__ import annotations

import itertools

import pytest

from interlock.errors import IllegalTransition, InterlockError
from interlock.states import (
    ATTEMPT_RETRYABLE,
    NODE_CANCELLABLE,
    NODE_FAILURES,
    NODE_IN_FLIGHT,
    NODE_TERMINAL,
    NODE_TRANSITIONS,
    RUN_CANCELLABLE,
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    ApprovalState,
    NodeState,
    RunState,
    can_transition,
    transition,
)

N = NodeState
R = RunState

# The expected tables, written out by hand (NOT derived from the source).
EXPECTED_NODE_PAIRS: frozenset[tuple[NodeState, NodeState]] = frozenset({
    (N.PENDING, N.QUEUED),
    (N.PENDING, N.SKIPPED),
    (N.PENDING, N.FAILED),
    (N.PENDING, N.CANCELLED),
    (N.PENDING, N.APPROVAL_WAIT),
    (N.PENDING, N.SLOT_WAIT),

    (N.APPROVAL_WAIT, N.QUEUED),
    (N.APPROVAL_WAIT, N.SUCCEEDED),
    (N.APPROVAL_WAIT, N.FAILED),
    (N.APPROVAL_WAIT, N.SKIPPED),
    (N.APPROVAL_WAIT, N.TIMED_OUT),
    (N.APPROVAL_WAIT, N.CANCELLED),
    (N.APPROVAL_WAIT, N.SLOT_WAIT),

    (N.SLOT_WAIT, N.QUEUED),
    (N.SLOT_WAIT, N.CANCELLED),
    (N.SLOT_WAIT, N.APPROVAL_WAIT),
    (N.SLOT_WAIT, N.FAILED),

    (N.QUEUED, N.RUNNING),
    (N.QUEUED, N.SUCCEEDED),
    (N.QUEUED, N.FAILED),
    (N.QUEUED, N.TIMED_OUT),
    (N.QUEUED, N.LOST),
    (N.QUEUED, N.CANCELLED),
    (N.QUEUED, N.RETRY_WAIT),

    (N.RUNNING, N.SUCCEEDED),
    (N.RUNNING, N.FAILED),
    (N.RUNNING, N.TIMED_OUT),
    (N.RUNNING, N.LOST),
    (N.RUNNING, N.CANCELLED),
    (N.RUNNING, N.RETRY_WAIT),

    (N.RETRY_WAIT, N.QUEUED),
    (N.RETRY_WAIT, N.CANCELLED),
    (N.RETRY_WAIT, N.FAILED),
    (N.RETRY_WAIT, N.APPROVAL_WAIT),
    (N.RETRY_WAIT, N.SLOT_WAIT),

    # SUCCEEDED: nothing.
    (N.FAILED, N.PENDING),
    (N.TIMED_OUT, N.PENDING),
    (N.LOST, N.PENDING),
    (N.SKIPPED, N.PENDING),
    (N.CANCELLED, N.PENDING),
})

EXPECTED_RUN_PAIRS: frozenset[tuple[RunState, RunState]] = frozenset({
    (R.PENDING, R.RUNNING),
    (R.PENDING, R.CANCELLING),
    (R.PENDING, R.QUEUED),
    (R.PENDING, R.CANCELLED),
    (R.PENDING, R.FAILED),

    (R.QUEUED, R.RUNNING),
    (R.QUEUED, R.CANCELLING),
    (R.QUEUED, R.CANCELLED),
    (R.QUEUED, R.FAILED),

    (R.RUNNING, R.SUCCEEDED),
    (R.RUNNING, R.FAILED),
    (R.RUNNING, R.CANCELLING),

    (R.CANCELLING, R.CANCELLED),

    # SUCCEEDED: nothing.
    (R.FAILED, R.PENDING),
    (R.CANCELLED, R.PENDING),
})

NODE_PAIRS = list(itertools.product(NodeState, NodeState))
RUN_PAIRS = list(itertools.product(RunState, RunState))


def _pair_id(pair: tuple[NodeState | RunState, NodeState | RunState]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


# --- every pair --------------------------------------------------------------------------------


@pytest.mark.parametrize("pair", NODE_PAIRS, ids=[_pair_id(p) for p in NODE_PAIRS])
def test_node_transition_pair(pair: tuple[NodeState, NodeState]) -> None:
    current, target = pair
    if pair in EXPECTED_NODE_PAIRS:
        assert can_transition(current, target) is True
        result = transition(current, target)
        assert result is target
        assert isinstance(result, NodeState)
    else:
        assert can_transition(current, target) is False
        with pytest.raises(IllegalTransition) as info:
            transition(current, target)
        message = str(info.value)
        assert current.value in message
        assert target.value in message
        assert f"from {current.value} to {target.value}" in message
        assert message.startswith("node ")


@pytest.mark.parametrize("pair", RUN_PAIRS, ids=[_pair_id(p) for p in RUN_PAIRS])
def test_run_transition_pair(pair: tuple[RunState, RunState]) -> None:
    current, target = pair
    if pair in EXPECTED_RUN_PAIRS:
        assert can_transition(current, target) is True
        result = transition(current, target)
        assert result is target
        assert isinstance(result, RunState)
    else:
        assert can_transition(current, target) is False
        with pytest.raises(IllegalTransition) as info:
            transition(current, target)
        message = str(info.value)
        assert f"from {current.value} to {target.value}" in message
        assert message.startswith("run ")


def test_tables_cover_every_state_and_match_the_written_copy() -> None:
    assert set(NODE_TRANSITIONS) == set(NodeState)
    assert set(RUN_TRANSITIONS) == set(RunState)
    source_node_pairs = {(a, b) for a, targets in NODE_TRANSITIONS.items() for b in targets}
    source_run_pairs = {(a, b) for a, targets in RUN_TRANSITIONS.items() for b in targets}
    assert source_node_pairs == EXPECTED_NODE_PAIRS
    assert source_run_pairs == EXPECTED_RUN_PAIRS
    # No table entry mixes kinds.
    assert all(isinstance(b, NodeState) for targets in NODE_TRANSITIONS.values() for b in targets)
    assert all(isinstance(b, RunState) for targets in RUN_TRANSITIONS.values() for b in targets)


def test_no_self_transitions() -> None:
    for state in NodeState:
        assert not can_transition(state, state)
    for run_state in RunState:
        assert not can_transition(run_state, run_state)


def test_illegal_transition_is_an_interlock_error() -> None:
    with pytest.raises(InterlockError):
        transition(N.SUCCEEDED, N.PENDING)


# --- mixed kinds -------------------------------------------------------------------------------

# NodeState and RunState share values ("pending", "running", ...): as StrEnums they compare
# equal to each other, so only the type check keeps a run state out of the node table.
MIXED = [(n, r) for n in NodeState for r in RunState] + [(r, n) for r in RunState for n in NodeState]


@pytest.mark.parametrize("pair", MIXED, ids=[
    f"{type(a).__name__}.{a.value}->{type(b).__name__}.{b.value}" for a, b in MIXED])
def test_mixed_kinds_are_refused(pair: tuple[NodeState | RunState, NodeState | RunState]) -> None:
    current, target = pair
    assert can_transition(current, target) is False  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition) as info:
        transition(current, target)  # type: ignore[type-var]
    assert f"from {current.value} to {target.value}" in str(info.value)


def test_mixed_kinds_refused_even_where_the_same_value_pair_is_allowed() -> None:
    # pending -> running is a legal *run* transition and FAILED -> PENDING (run `retry`) too,
    # but not across kinds.
    assert can_transition(R.PENDING, R.RUNNING)
    assert not can_transition(N.PENDING, R.RUNNING)
    assert not can_transition(R.PENDING, N.RUNNING)
    assert can_transition(N.QUEUED, N.RUNNING)
    with pytest.raises(IllegalTransition, match="node state cannot go from queued to running"):
        transition(N.QUEUED, R.RUNNING)  # type: ignore[type-var]
    with pytest.raises(IllegalTransition, match="run state cannot go from failed to pending"):
        transition(R.FAILED, N.PENDING)  # type: ignore[type-var]


# --- group invariants --------------------------------------------------------------------------


def test_node_groups_are_what_they_say() -> None:
    assert NODE_TERMINAL == {N.SUCCEEDED, N.FAILED, N.TIMED_OUT, N.LOST, N.SKIPPED, N.CANCELLED}
    assert NODE_IN_FLIGHT == {N.QUEUED, N.RUNNING}
    assert NODE_CANCELLABLE == {N.PENDING, N.QUEUED, N.RUNNING, N.RETRY_WAIT, N.APPROVAL_WAIT,
                                N.SLOT_WAIT}
    assert NODE_FAILURES == {N.FAILED, N.TIMED_OUT, N.LOST, N.CANCELLED}
    assert ATTEMPT_RETRYABLE == {N.FAILED, N.TIMED_OUT, N.LOST}
    # Every state is exactly one of: terminal, in flight, pending, waiting to retry, for
    # an approval or for a concurrency slot.
    assert NODE_TERMINAL | NODE_IN_FLIGHT | {N.PENDING, N.RETRY_WAIT, N.APPROVAL_WAIT,
                                             N.SLOT_WAIT} \
        == set(NodeState)
    assert not NODE_TERMINAL & NODE_IN_FLIGHT
    assert not NODE_TERMINAL & NODE_CANCELLABLE
    assert NODE_FAILURES <= NODE_TERMINAL
    assert ATTEMPT_RETRYABLE <= NODE_FAILURES
    assert N.SUCCEEDED not in NODE_FAILURES and N.SKIPPED not in NODE_FAILURES


def test_terminal_node_states_only_reopen() -> None:
    for state in NODE_TERMINAL:
        targets = NODE_TRANSITIONS[state]
        allowed = set() if state is N.SUCCEEDED else {N.PENDING}
        assert targets == allowed, state


def test_succeeded_node_has_no_way_out() -> None:
    assert NODE_TRANSITIONS[N.SUCCEEDED] == frozenset()
    for target in NodeState:
        with pytest.raises(IllegalTransition):
            transition(N.SUCCEEDED, target)


def test_lost_is_distinct_from_failed() -> None:
    assert N.LOST is not N.FAILED
    assert N.LOST.value != N.FAILED.value
    assert N.LOST in NODE_FAILURES and N.FAILED in NODE_FAILURES
    # Nothing finds a lost job again (polls only read RUNNING attempts): LOST is final
    # until a manual retry, like FAILED.
    assert NODE_TRANSITIONS[N.LOST] == NODE_TRANSITIONS[N.FAILED] == {N.PENDING}


def test_cancellable_nodes_can_be_cancelled_and_others_cannot() -> None:
    for state in NodeState:
        assert can_transition(state, N.CANCELLED) is (state in NODE_CANCELLABLE), state


def test_in_flight_nodes_can_reach_every_attempt_outcome() -> None:
    for state in NODE_IN_FLIGHT:
        for outcome in (N.SUCCEEDED, N.FAILED, N.TIMED_OUT, N.LOST, N.CANCELLED, N.RETRY_WAIT):
            assert can_transition(state, outcome), (state, outcome)


def test_run_groups_and_terminal_run_states() -> None:
    assert RUN_TERMINAL == {R.SUCCEEDED, R.FAILED, R.CANCELLED}
    assert RUN_CANCELLABLE == {R.PENDING, R.QUEUED, R.RUNNING}
    assert RUN_TRANSITIONS[R.SUCCEEDED] == frozenset()
    for state in RUN_TERMINAL - {R.SUCCEEDED}:
        assert RUN_TRANSITIONS[state] == {R.PENDING}, state  # only `retry`
    for state in RUN_CANCELLABLE:
        assert can_transition(state, R.CANCELLING)
    for state in set(RunState) - RUN_CANCELLABLE:
        assert not can_transition(state, R.CANCELLING)
    # CANCELLING only finishes as CANCELLED.
    assert RUN_TRANSITIONS[R.CANCELLING] == {R.CANCELLED}


A = ApprovalState
EXPECTED_APPROVAL_PAIRS: frozenset[tuple[ApprovalState, ApprovalState]] = frozenset({
    (A.PENDING, A.APPROVED),
    (A.PENDING, A.REJECTED),
    (A.PENDING, A.TIMED_OUT),
    (A.PENDING, A.CANCELLED),
    (A.PENDING, A.VOID),
    (A.PENDING, A.ANSWERED),
    (A.APPROVED, A.PENDING),  # an approver lost the role before submit
    (A.APPROVED, A.VOID),     # a retry would submit other values than were approved
})


def test_approval_pairs_match_the_table() -> None:
    for a, b in itertools.product(ApprovalState, repeat=2):
        assert can_transition(a, b) is ((a, b) in EXPECTED_APPROVAL_PAIRS), (a, b)
        if (a, b) not in EXPECTED_APPROVAL_PAIRS:
            with pytest.raises(IllegalTransition, match="approval state"):
                transition(a, b)
    assert not can_transition(A.PENDING, N.PENDING)  # type: ignore[arg-type]
