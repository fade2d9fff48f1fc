"""Node and run states, and the one table of transitions between them.

Every state change in Interlock goes through :func:`transition`, which checks the
table; the store persists the result as a compare-and-set update plus an
append-only state event. Attempts use :class:`NodeState` too (a subset of it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from interlock.errors import IllegalTransition


class NodeState(StrEnum):
    PENDING = "pending"        # waiting for its upstream nodes
    QUEUED = "queued"          # an attempt was decided and handed to dispatch; no handle yet
    RUNNING = "running"        # submitted: the remote system holds it under an external handle
    RETRY_WAIT = "retry_wait"  # an attempt failed; the next one starts after the backoff
    APPROVAL_WAIT = "approval_wait"  # its approval gate waits for people; nothing submitted
    SLOT_WAIT = "slot_wait"    # ready, but its system is at its concurrency limit
    SUCCEEDED = "succeeded"    # the remote system reported success
    FAILED = "failed"          # the remote system reported failure (or refused the job)
    TIMED_OUT = "timed_out"    # Interlock stopped it after `timeout`
    LOST = "lost"              # Interlock can no longer see the job (not the same as FAILED)
    SKIPPED = "skipped"        # `if:` was false, or an upstream node did not succeed
    CANCELLED = "cancelled"    # cancelled by a person or by the run's cancellation


class RunState(StrEnum):
    PENDING = "pending"        # created, not yet planned
    QUEUED = "queued"          # its flow or namespace is at its concurrency limit
    RUNNING = "running"        # at least one planning pass made
    CANCELLING = "cancelling"  # cancel asked; in-flight attempts are being cancelled
    SUCCEEDED = "succeeded"    # every node succeeded or was skipped by its `if:`
    FAILED = "failed"          # some node failed, timed out or was lost
    CANCELLED = "cancelled"    # cancelled before it finished


class ApprovalState(StrEnum):
    """An approval request's state: one compare-and-set decides, so a vote, the timer and a
    cancel racing give exactly one outcome."""

    PENDING = "pending"      # waiting for votes
    APPROVED = "approved"    # the rules are met (reopened if an approver lost the role)
    REJECTED = "rejected"    # a rejecting option was chosen
    TIMED_OUT = "timed_out"  # nobody decided in time: the gate's `on_timeout` applies
    CANCELLED = "cancelled"  # the run was cancelled while it waited
    VOID = "void"            # what it covered changed (a retry with other values): asked again
    ANSWERED = "answered"    # a foreign request answered in its own system (not through us)


class SkipCause(StrEnum):
    """Why a node is SKIPPED (persisted as `node_runs.skip_cause`; the reason is only prose).

    `retry` re-opens UPSTREAM and REJECTED skips (it asks again) and leaves CONDITION skips
    alone.
    """

    CONDITION = "condition"    # its own `if:` was false
    UPSTREAM = "upstream"      # `trigger_rule: all_success` and an upstream node did not succeed
    REJECTED = "rejected"      # its approval was rejected and the gate says `on_reject: skip`


NODE_TERMINAL = frozenset({NodeState.SUCCEEDED, NodeState.FAILED, NodeState.TIMED_OUT,
                           NodeState.LOST, NodeState.SKIPPED, NodeState.CANCELLED})
NODE_IN_FLIGHT = frozenset({NodeState.QUEUED, NodeState.RUNNING})
NODE_CANCELLABLE = frozenset({NodeState.PENDING, NodeState.QUEUED, NodeState.RUNNING,
                              NodeState.RETRY_WAIT, NodeState.APPROVAL_WAIT,
                              NodeState.SLOT_WAIT})
# Failed in the broad sense: the work ran and did not succeed (`after: failed` matches these).
NODE_FAILED = frozenset({NodeState.FAILED, NodeState.TIMED_OUT, NodeState.LOST})
# Attempt outcomes that the retry policy may try again.
ATTEMPT_RETRYABLE = NODE_FAILED
# Ended by a verdict, not by a cancel: what a success rate is computed over.
NODE_ENDED = NODE_FAILED | {NodeState.SUCCEEDED}
# Terminal states that make a run fail and that `retry` re-opens.
NODE_FAILURES = NODE_FAILED | {NodeState.CANCELLED}

APPROVAL_OPEN = frozenset({ApprovalState.PENDING})
APPROVAL_DECIDED = frozenset({ApprovalState.APPROVED, ApprovalState.REJECTED,
                              ApprovalState.TIMED_OUT, ApprovalState.ANSWERED})

RUN_TERMINAL = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
RUN_CANCELLABLE = frozenset({RunState.PENDING, RunState.QUEUED, RunState.RUNNING})
RUN_WAITING = frozenset({RunState.PENDING, RunState.QUEUED})       # not yet admitted
RUN_RETRYABLE = frozenset({RunState.FAILED, RunState.CANCELLED})   # `retry` re-opens these
RUN_ACTIVE = frozenset({RunState.RUNNING, RunState.CANCELLING})    # planned, not finished

# Words an `after.state` may use besides the exact state names (and the foreign system's own
# word, `remote_status`), each naming a group. `canceled` is the one-l spelling of `cancelled`.
STATE_WORDS: dict[str, frozenset[NodeState]] = {
    "success": frozenset({NodeState.SUCCEEDED}),
    "failed": NODE_FAILED,
    "failure": NODE_FAILED,
    "canceled": frozenset({NodeState.CANCELLED}),
}

_N = NodeState
_R = RunState

NODE_TRANSITIONS: dict[NodeState, frozenset[NodeState]] = {
    _N.PENDING: frozenset({_N.QUEUED, _N.SKIPPED, _N.FAILED, _N.CANCELLED, _N.APPROVAL_WAIT,
                           _N.SLOT_WAIT}),
    # Out of APPROVAL_WAIT by the decision: submitted, a decision node settled, rejected
    # (failed or skipped), timed out, or cancelled with the run.
    _N.APPROVAL_WAIT: frozenset({_N.QUEUED, _N.SUCCEEDED, _N.FAILED, _N.SKIPPED,
                                 _N.TIMED_OUT, _N.CANCELLED, _N.SLOT_WAIT}),
    # Out of SLOT_WAIT when a slot frees (submitted), with the run (cancelled), or when what
    # it was approved for changed meanwhile (asked again) or no longer renders (failed).
    _N.SLOT_WAIT: frozenset({_N.QUEUED, _N.CANCELLED, _N.APPROVAL_WAIT, _N.FAILED}),
    # QUEUED -> SUCCEEDED/FAILED: an adapter may finish (or refuse) the job within submit.
    _N.QUEUED: frozenset({_N.RUNNING, _N.SUCCEEDED, _N.FAILED, _N.TIMED_OUT, _N.LOST,
                          _N.CANCELLED, _N.RETRY_WAIT}),
    _N.RUNNING: frozenset({_N.SUCCEEDED, _N.FAILED, _N.TIMED_OUT, _N.LOST, _N.CANCELLED,
                           _N.RETRY_WAIT}),
    # -> APPROVAL_WAIT: the retry's values differ from what was approved: asked again.
    _N.RETRY_WAIT: frozenset({_N.QUEUED, _N.CANCELLED, _N.FAILED, _N.APPROVAL_WAIT,
                              _N.SLOT_WAIT}),
    _N.SUCCEEDED: frozenset(),
    # A manual `retry` re-opens what did not succeed; nothing else leaves a terminal state.
    _N.FAILED: frozenset({_N.PENDING}),
    _N.TIMED_OUT: frozenset({_N.PENDING}),
    _N.LOST: frozenset({_N.PENDING}),
    _N.SKIPPED: frozenset({_N.PENDING}),
    _N.CANCELLED: frozenset({_N.PENDING}),
}

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # A pending run is first planned (RUNNING), queued for a slot, or asked to cancel; a
    # concurrency limit with `cancel_new` / `fail_new` ends it at once.
    _R.PENDING: frozenset({_R.RUNNING, _R.QUEUED, _R.CANCELLING, _R.CANCELLED, _R.FAILED}),
    # A queued run may also end at once: another of its limits (its flow's, with
    # `cancel_new` / `fail_new`) is full when its first one frees.
    _R.QUEUED: frozenset({_R.RUNNING, _R.CANCELLING, _R.CANCELLED, _R.FAILED}),
    _R.RUNNING: frozenset({_R.SUCCEEDED, _R.FAILED, _R.CANCELLING}),
    _R.CANCELLING: frozenset({_R.CANCELLED}),
    _R.SUCCEEDED: frozenset(),
    # `retry`: pending again, so the run is admitted under its concurrency limits again.
    _R.FAILED: frozenset({_R.PENDING}),
    _R.CANCELLED: frozenset({_R.PENDING}),
}


_A = ApprovalState

APPROVAL_TRANSITIONS: dict[ApprovalState, frozenset[ApprovalState]] = {
    _A.PENDING: frozenset({_A.APPROVED, _A.REJECTED, _A.TIMED_OUT, _A.CANCELLED, _A.VOID,
                           _A.ANSWERED}),
    # Checked again at submit: an approver who lost the role no longer counts (PENDING);
    # the node would now be submitted with other values than were approved (VOID).
    _A.APPROVED: frozenset({_A.PENDING, _A.VOID}),
    _A.REJECTED: frozenset(),
    _A.TIMED_OUT: frozenset(),
    _A.CANCELLED: frozenset(),
    _A.VOID: frozenset(),
    _A.ANSWERED: frozenset(),
}

_TABLES: dict[type, dict] = {NodeState: NODE_TRANSITIONS, RunState: RUN_TRANSITIONS,
                             ApprovalState: APPROVAL_TRANSITIONS}


def can_transition(current: NodeState | RunState | ApprovalState,
                   target: NodeState | RunState | ApprovalState) -> bool:
    if type(current) is not type(target) or type(current) not in _TABLES:
        return False
    return target in _TABLES[type(current)][current]


S = TypeVar("S", NodeState, RunState, ApprovalState)


def transition(current: S, target: S) -> S:
    """Return ``target`` if the table allows ``current -> target``; raise otherwise.

    The only door for a state change: the store calls it before every compare-and-set.
    """
    if not can_transition(current, target):
        kind = {NodeState: "node", RunState: "run", ApprovalState: "approval"}[type(current)]
        raise IllegalTransition(f"{kind} state cannot go from {current!s} to {target!s}")
    return target
