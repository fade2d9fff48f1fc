"""The controller: plan a run and apply the decisions in one transaction.

Decisions become compare-and-set state changes, attempt rows and outbox rows together,
so a crash anywhere leaves either all of a pass or none of it. The outbox rows are sent
after the commit; the reconciler sends again whatever a dead process did not finish.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from interlock import clock
from interlock.approvals import gates as approval_gates
from interlock.dispatch import inline, policy_gate
from interlock.dispatch.admission import Admission
from interlock.engine.decisions import (
    CancelAttempt,
    CloseApproval,
    CloseAttempt,
    Decision,
    NudgeApproval,
    OpenApproval,
    Plan,
    SetNode,
    SetRun,
    Submit,
)
from interlock.engine.planner import plan
from interlock.limits.scopes import Scope
from interlock.policies.context import SYSTEM_KEY
from interlock.spec.concurrency import Overflow
from interlock.states import RUN_TERMINAL, RUN_WAITING, NodeState, RunState
from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher, Work
from interlock.store.runs import Loaded, load, lock_run
from interlock.store.tables import RUNS, Attempt, Run, TaskKind
from interlock.store.transitions import (
    LostRace,
    batched_events,
    coalesced_writes,
    set_attempt_state,
    set_node_state,
    set_run_state,
    storable,
)
from interlock.telemetry import settings as telemetry
from interlock.triggers.firing import after_flow_run

ACTOR = "planner"
TRIGGER_ORIGIN = "flow"
MAX_PASSES = 5
# A queued run (or a node in slot_wait) is woken by the pass that frees its slot; this only
# bounds the cost of a wake-up that never came (a bug, or a limit raised meanwhile).
QUEUED_RECHECK = timedelta(seconds=60)
UPDATED_AT = "updated_at"
_OVERFLOW_END = {Overflow.CANCEL_NEW: RunState.CANCELLED, Overflow.FAIL_NEW: RunState.FAILED}


class StaleSnapshot(LostRace):
    """A compare-and-set lost a race: the pass is rolled back and planned again."""


def advance(run_id: str, *, dispatcher: Dispatcher, actor: str = ACTOR,
            first: Callable[[Session], object] | None = None,
            done: Work | None = None) -> RunState:
    """Plan ``run_id`` until nothing more is due now; return the run's state.

    ``first`` runs in the first pass's transaction, under the run's lock, before planning:
    an executor records an attempt's outcome there, so the outcome and the decisions that
    follow from it commit together (one commit per node instead of two). ``done`` is the
    outbox work ``first`` completes; its row goes in the same statement as the ADVANCE rows.
    """
    state = RunState.PENDING
    for _ in range(MAX_PASSES):
        try:
            with session_scope() as session, batched_events(session):
                run = lock_run(session, run_id)
                if first is not None:
                    first(session)
                outbox.complete_all(session, run_id, [Work(TaskKind.ADVANCE, run_id),
                                                      *([done] if done else [])])
                with coalesced_writes(session):
                    work, state, result = _plan_settled(session, load(session, run_id, run=run),
                                                        actor)
        except LostRace:  # StaleSnapshot, or a coalesced write that found its row changed
            continue
        first = done = None
        for item in work:
            dispatcher.send(item)
        if not _due_again(result):
            break
    return state


def plan_started(session: Session, loaded: Loaded) -> list[Work]:
    """The first pass of a run, in the transaction of the start that created it
    (`operations.runs`, `store.runs.create_run_to_plan`): the work it owes, to send once
    that commits.

    The run's first nodes are queued without a worker first picking up an ADVANCE message
    for it, and a run whose nodes settle in submit ends in the start's own transaction.
    Nothing else sees the run before that commits, so its row needs no lock and no other
    pass of it can race this one; what it shares with other runs (limits, triggers) is
    taken as a worker's pass takes it. Raises as a pass does (LostRace included); the
    caller then starts the run without it.
    """
    with batched_events(session), coalesced_writes(session):
        work, _, result = _plan_settled(session, loaded, ACTOR)
    if _due_again(result):
        work.append(outbox.add(session, Work(TaskKind.ADVANCE, loaded.run.id)))
    return work


def _due_again(result: Plan) -> bool:
    """Whether a pass that decided something asks to be planned again now."""
    return bool(result.decisions) and result.wake_at is not None and result.wake_at <= clock.now()


def _plan_settled(session: Session, loaded: Loaded,
                  actor: str) -> tuple[list[Work], RunState, Plan]:
    """Plan and apply, again in the same transaction while a pass settled a node in
    submit (`dispatch.inline`): a chain of such nodes costs one transaction."""
    work: list[Work] = []
    run_id = loaded.run.id
    for passes in itertools.count(1):
        if loaded.approvals and approval_gates.recheck(session, loaded):
            loaded = load(session, run_id, run=loaded.run)  # a request was reopened
        result = plan(loaded.graph, loaded.view(), clock.now())
        applier = _apply(session, loaded, result, actor)
        work += applier.work
        if not applier.settled:
            break
        if passes > len(loaded.nodes):  # cannot happen (each pass settles a node); if it
            work.append(outbox.add(session, Work(TaskKind.ADVANCE, run_id)))  # did: later
            break
        if not applier.known:  # it did more than the pass can mirror: read the run again
            loaded = load(session, run_id)
    return work, applier.run_state, result


def _apply(session: Session, loaded: Loaded, result: Plan, actor: str) -> _Applier:
    applier = _Applier(session, loaded, actor, result)
    applier.admission.lock(result.decisions)
    for decision in result.decisions:
        if not applier.apply(decision):
            break  # the run is held by a concurrency limit: the rest of the plan waits too
    wake_at = None if applier.run_state in RUN_TERMINAL else result.wake_at
    if applier.run_state is RunState.QUEUED:
        wake_at = clock.now() + QUEUED_RECHECK
    if wake_at != loaded.run.wake_at:
        session.execute(update(RUNS).where(Run.id == loaded.run.id)
                        .values(wake_at=wake_at))
        _mirror(session, loaded.run, wake_at=wake_at)
    return applier


def _mirror(session: Session, row: object, **values: object) -> None:
    """What an UPDATE of this pass wrote, onto the loaded row, without marking it changed:
    the next pass of the same transaction plans from it instead of reading it again."""
    for name, value in storable(values).items():
        set_committed_value(row, name, value)
    session.expire(row, [UPDATED_AT])  # stamped by the store; read again only if asked


class _Applier:
    """Applies one plan's decisions, tracking states as they change within the pass."""

    def __init__(self, session: Session, loaded: Loaded, actor: str, plan: Plan):
        self.session, self.loaded, self.actor, self.plan = session, loaded, actor, plan
        self.run_id = loaded.run.id
        self.run_state = RunState(loaded.run.state)
        self.node_states = {nid: NodeState(n.state) for nid, n in loaded.nodes.items()}
        self.work: list[Work] = []
        self.settled = False  # a node was settled in submit: the run is planned again
        # Every change of this pass is mirrored onto `loaded` (so the next pass reads nothing
        # again) while it only sets the run, sets nodes and submits them.
        self.known = not loaded.approvals
        self.admission = Admission(session, loaded)

    def apply(self, decision: Decision) -> bool:
        """Apply ``decision``; False when the run may not start yet (nothing more applies)."""
        if not isinstance(decision, SetRun | SetNode | Submit):
            self.known = False
        match decision:
            case SetRun():
                if decision.to is RunState.RUNNING and self.run_state in RUN_WAITING:
                    held = self.admission.held_run()
                    if held is not None:
                        self._hold_run(held)
                        return False
                    self._set_run(decision)
                    self._wake(self.admission.wake_after_run())  # slots may be left
                    return True
                self._set_run(decision)
            case SetNode():
                self._set_node(decision)
            case Submit():
                self._submit(decision)
            case CloseAttempt():
                self._close_attempt(decision)
            case CancelAttempt():
                self._cancel_attempt(decision)
            case OpenApproval():
                approval_gates.open_request(self.session, self.loaded, decision)
            case CloseApproval():
                self._check(approval_gates.close_request(self.session, self.loaded, decision))
            case NudgeApproval():
                approval_gates.nudge_request(self.session, self.loaded, decision)
        return True

    def _set_run(self, d: SetRun) -> None:
        finished_at = clock.now() if d.to in RUN_TERMINAL else None
        was = self.run_state
        self._check(set_run_state(self.session, run_id=self.run_id, expected=was,
                                  to=d.to, actor=self.actor, reason=d.reason,
                                  finished_at=finished_at, waiting_for=None))
        self.run_state = d.to
        if d.to in RUN_TERMINAL:
            self._fire_waiting_flows(d.to)
            if telemetry.enabled():  # its spans, sent once this transaction commits
                self.work.append(outbox.add(self.session, Work(TaskKind.EXPORT, self.run_id)))
            if was not in RUN_WAITING:  # it held its flow's and namespace's slots
                self._wake(self.admission.wake_after_run())
        # Last: what the run held (read by the admission above) is the state it had.
        _mirror(self.session, self.loaded.run, state=d.to.value, reason=d.reason,
                finished_at=finished_at, waiting_for=None)

    def _hold_run(self, scope: Scope) -> None:
        """No slot: queue the run, or end it at once (`cancel_new`, `fail_new`)."""
        reason = scope.describe()
        end = _OVERFLOW_END.get(scope.behavior)
        self.known = False
        if end is None:
            if self.run_state is RunState.PENDING:
                self._check(set_run_state(self.session, run_id=self.run_id,
                                          expected=self.run_state, to=RunState.QUEUED,
                                          actor=self.actor, reason=f"{reason}; queued",
                                          waiting_for=scope.key))
                self.run_state = RunState.QUEUED
            elif self.loaded.run.waiting_for != scope.key:  # now held by another of its scopes
                self.session.execute(update(RUNS).where(Run.id == self.run_id)
                                     .values(waiting_for=scope.key))
            return
        for node_id in self.node_states:
            self._set_node(SetNode(node_id, NodeState.CANCELLED, f"run not started: {reason}"))
        self._set_run(SetRun(end, f"{reason} (`{scope.behavior.value}`)"))

    def _wake(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            self.work.append(outbox.add(self.session, Work(TaskKind.ADVANCE, run_id)))

    def _fire_waiting_flows(self, state: RunState) -> None:
        """`after: {flow: ...}` triggers fire in the transaction that finishes the run."""
        for fired in after_flow_run(self.session, self.loaded.run, state,
                                    origin=TRIGGER_ORIGIN):
            self.work.append(Work(TaskKind.ADVANCE, fired.run_id))  # its outbox row exists

    def _set_node(self, d: SetNode) -> None:
        values: dict[str, object] = {"error": d.error, "retry_at": d.retry_at}
        if d.outputs is not None:
            values["outputs"] = d.outputs
        was = self.node_states[d.node_id]
        self._check(set_node_state(self.session, run_id=self.run_id, node_id=d.node_id,
                                   expected=was, to=d.to, actor=self.actor, reason=d.reason,
                                   skip_cause=d.skip_cause, waiting_for=None, **values))
        self.node_states[d.node_id] = d.to
        self._wake(self.admission.wake_after_node(d.node_id, was))
        # Last: the slot it gave back (read by the admission above) is the one it held.
        _mirror(self.session, self.loaded.nodes[d.node_id], state=d.to.value, reason=d.reason,
                skip_cause=d.skip_cause.value if d.skip_cause else None, waiting_for=None,
                **values)

    def _submit(self, d: Submit) -> None:
        if self._policy_holds(d) or self._slot_wait(d):
            self.known = False
            return
        system = d.params.get(SYSTEM_KEY)
        key = attempt_key(self.run_id, d.node_id, d.attempt)
        values = {"run_id": self.run_id, "node_id": d.node_id, "number": d.attempt, "key": key,
                  "uses": self.loaded.flow.nodes[d.node_id].uses,
                  "system": system if isinstance(system, str) else None, "params": d.params,
                  "created_at": clock.now()}
        self._check(set_node_state(self.session, run_id=self.run_id, node_id=d.node_id,
                                   expected=self.node_states[d.node_id], to=NodeState.QUEUED,
                                   actor=self.actor, reason=f"attempt {d.attempt} queued",
                                   retry_at=None, waiting_for=None))
        _mirror(self.session, self.loaded.nodes[d.node_id], state=NodeState.QUEUED.value,
                reason=f"attempt {d.attempt} queued", retry_at=None, waiting_for=None,
                skip_cause=None)
        self.node_states[d.node_id] = NodeState.QUEUED
        observed = inline.observe(self.loaded, d, key)
        if observed is not None:  # settled now; the next pass (same transaction) goes on
            settled, owed = inline.record(self.session, self.loaded, observed, **values)
            self.loaded.attempts.setdefault(d.node_id, []).append(settled)
            self.work += owed
            self.settled = True
            return
        attempt = Attempt(**values, state=NodeState.QUEUED.value, outputs={}, submit_tries=0)
        self.session.add(attempt)
        self.session.flush()
        self.loaded.attempts.setdefault(d.node_id, []).append(attempt)
        self.work.append(outbox.add(self.session, Work(TaskKind.EXECUTE, self.run_id, attempt.id)))

    def _policy_holds(self, d: Submit) -> bool:
        """Whether a policy fails the node, or makes it wait for an approval, instead."""
        verdict = policy_gate.verdict(self.session, self.loaded, d.node_id)
        if verdict.refused is not None or verdict.ask is not None:
            self.plan.wake(clock.now())  # the plan thought it submitted: plan again now
        if verdict.refused is not None:
            self._set_node(SetNode(d.node_id, NodeState.FAILED, "refused by policy",
                                   error=verdict.refused))
            return True
        if verdict.ask is None:
            return False
        for decision in policy_gate.ask(self.loaded, d, verdict.ask,
                                        self.node_states[d.node_id], clock.now(), self.plan):
            self.apply(decision)
        return True

    def _slot_wait(self, d: Submit) -> bool:
        """Whether the node's system has no slot for it now (it then waits in SLOT_WAIT)."""
        was = self.node_states[d.node_id]
        row = self.loaded.nodes[d.node_id]
        held = self.admission.held_node(
            d, row.updated_at if was is NodeState.SLOT_WAIT else None)
        if held is None:
            return False
        self.plan.wake(clock.now() + QUEUED_RECHECK)  # bounds a wake-up that never came
        if was is not NodeState.SLOT_WAIT:
            self._check(set_node_state(self.session, run_id=self.run_id, node_id=d.node_id,
                                       expected=was, to=NodeState.SLOT_WAIT, actor=self.actor,
                                       reason=held.describe(), retry_at=None,
                                       waiting_for=held.key))
            self.node_states[d.node_id] = NodeState.SLOT_WAIT
        return True

    def _attempt(self, node_id: str, number: int) -> Attempt:
        return next(a for a in self.loaded.attempts[node_id] if a.number == number)

    def _close_attempt(self, d: CloseAttempt) -> None:
        attempt = self._attempt(d.node_id, d.attempt)
        self._check(set_attempt_state(self.session, attempt=attempt,
                                      expected=NodeState(attempt.state), to=d.to,
                                      actor=self.actor, reason=d.reason, error=d.reason,
                                      finished_at=clock.now()))
        outbox.complete(self.session, kind=TaskKind.EXECUTE, run_id=self.run_id,
                        attempt_id=attempt.id)

    def _cancel_attempt(self, d: CancelAttempt) -> None:
        attempt = self._attempt(d.node_id, d.attempt)
        # Without a handle nothing runs yet; the executor cancels what it submits late.
        if attempt.handle is not None:
            self.work.append(outbox.add(self.session,
                                        Work(TaskKind.CANCEL, self.run_id, attempt.id)))

    @staticmethod
    def _check(changed: bool) -> None:
        if not changed:
            raise StaleSnapshot("a state changed under this pass")


def attempt_key(run_id: str, node_id: str, number: int) -> str:
    """The idempotency key of an attempt: stable across every retry of the same task."""
    return f"{run_id}.{node_id}.{number}"

