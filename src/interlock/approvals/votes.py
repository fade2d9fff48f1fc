"""A person's vote on a request, and the decision it may complete, in one transaction.

The vote takes the run's lock (the planner's timer and the run's cancel take it too), checks
the request is still open and its deadline not passed, checks who the person is against the
rules and the separation of duties, records the vote, and decides by one compare-and-set:
a rejecting option rejects at once; otherwise the votes for the same option with the same
inputs are counted against the rules. Whatever lost the race is told so (409).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from interlock import clock
from interlock.access.principals import Forbidden, Principal
from interlock.approvals import gates, notices, people
from interlock.approvals.quorum import Voter, eligible, tally
from interlock.errors import Conflict, InterlockError, NotFound
from interlock.spec.inputs import check_inputs
from interlock.spec.models import InputSpec
from interlock.states import ApprovalState, RunState
from interlock.store import approvals as store
from interlock.store import audit, outbox
from interlock.store.runs import lock_run
from interlock.store.tables import ApprovalRequest, TaskKind


class VoteRefused(InterlockError):
    """The vote is not valid as given (an unknown option, bad inputs): nothing was recorded."""


@dataclass(frozen=True)
class VoteOutcome:
    request_id: str
    state: ApprovalState
    counted_toward: list[str]   # the rules this person can count toward
    tally: str                  # what is still missing, or that every rule is met
    run_id: str | None


def cast(session: Session, *, request_id: str, principal: Principal, option: str,
         inputs: dict[str, Any], comment: str, origin: str = audit.LOCAL_ORIGIN,
         inputs_are_strings: bool = False) -> VoteOutcome:
    row = _open_request(session, request_id)
    if option not in row.options:
        raise VoteRefused(f"option {option!r} is not offered; choose one of {row.options}")
    rejecting = option in row.reject_options
    inputs = {} if rejecting else _checked(row, inputs, inputs_are_strings)
    voter = people.voter_of(principal, row.namespace)
    rules = _who_counts(row, principal, voter)
    if store.has_voted(session, row.id, voter.actor):
        raise Conflict(f"{voter.actor} has already voted on request {row.id}; one vote per "
                       "person")
    store.add_vote(session, row=row, actor=voter.actor, groups=principal.groups, option=option,
                   inputs=inputs, comment=comment, eligible=rules, origin=origin)
    if rejecting:
        state, summary = _reject(session, row, voter, option, comment, origin), "rejected"
    else:
        state, summary = _count(session, row, option, inputs, origin)
    if state is not ApprovalState.PENDING and row.run_id is not None:
        outbox.add(session, outbox.Work(TaskKind.ADVANCE, row.run_id))  # release or end it
    return VoteOutcome(request_id=row.id, state=state, counted_toward=rules, tally=summary,
                       run_id=row.run_id)


def could_vote(session: Session, row: ApprovalRequest, principal: Principal) -> bool:
    """Whether ``principal`` could still vote on ``row`` (for `--mine`)."""
    if row.state != ApprovalState.PENDING.value:
        return False
    voter = people.voter_of(principal, row.namespace)
    if voter.actor in row.excluded or store.has_voted(session, row.id, voter.actor):
        return False
    rules, escalation = gates.rules_of(row)
    return bool(eligible(rules, voter) or eligible(escalation, voter))


def _open_request(session: Session, request_id: str) -> ApprovalRequest:
    """The request, locked with its run, if it can still take a vote."""
    found = store.get(session, request_id)
    if found is None:
        raise NotFound(f"approval request `{request_id}` does not exist")
    if found.run_id is not None:
        run = lock_run(session, found.run_id)  # the timer and cancel take it too
        if run.state != RunState.RUNNING.value:
            raise Conflict(f"run `{run.id}` is {run.state}; its requests take no more votes")
    row = store.get(session, request_id, lock=True)
    assert row is not None
    if row.state != ApprovalState.PENDING.value:
        raise Conflict(f"request {row.id} is already {row.state}"
                       + (f" ({row.reason})" if row.reason else ""))
    if row.deadline is not None and row.deadline <= clock.now():
        raise Conflict(f"request {row.id} timed out at {row.deadline.isoformat()}; votes "
                       "after the deadline do not count")
    return row


def _checked(row: ApprovalRequest, inputs: dict[str, Any], from_strings: bool) -> dict:
    specs = {k: InputSpec.model_validate(v) for k, v in row.inputs_spec.items()}
    return check_inputs(specs, inputs, from_strings=from_strings)


def _who_counts(row: ApprovalRequest, principal: Principal, voter: Voter) -> list[str]:
    """The rules ``voter`` counts toward; refused with the reason when there are none."""
    why = row.excluded.get(voter.actor)
    if why is not None:
        raise Forbidden(f"{voter.actor} {why}, so may not approve it (separation of duties)",
                        actor=voter.actor, permission="approvals:approve",
                        namespace=row.namespace)
    rules, escalation = gates.rules_of(row)
    counted = eligible(rules, voter) + [f"escalation: {r}" for r in eligible(escalation, voter)]
    if not counted:
        asked = "; ".join(r.label for r in rules + escalation)
        raise Forbidden(f"{voter.actor} is not among the people this request asks ({asked})",
                        actor=voter.actor, permission="approvals:approve",
                        namespace=row.namespace)
    return counted


def _reject(session: Session, row: ApprovalRequest, voter: Voter, option: str, comment: str,
            origin: str) -> ApprovalState:
    reason = f"{option} by {voter.actor}" + (f": {comment}" if comment else "")
    store.set_state(session, row, expected=ApprovalState.PENDING, to=ApprovalState.REJECTED,
                    actor=voter.actor, reason=reason, origin=origin, option=option,
                    decided_by=[voter.actor], counted={voter.actor: "reject"})
    notices.decided(session, row)
    return ApprovalState.REJECTED


def _count(session: Session, row: ApprovalRequest, option: str, inputs: dict[str, Any],
           origin: str) -> tuple[ApprovalState, str]:
    """Count the votes for (option, inputs) with who the voters are now; approve if met."""
    voters = [v for v in gates.current_voters(session, row, option=option, inputs=inputs)
              if v is not None]
    rules, escalation = gates.rules_of(row)
    result = tally(rules, voters)
    if not result.met and escalation:
        escalated = tally(escalation, voters)
        result = escalated if escalated.met else result
    if not result.met:
        return ApprovalState.PENDING, result.summary()
    by = sorted(result.counted)
    store.set_state(session, row, expected=ApprovalState.PENDING, to=ApprovalState.APPROVED,
                    actor=voter_list(by), reason=f"{option} by {', '.join(by)}", origin=origin,
                    option=option, decided_by=by, decision_inputs=inputs,
                    counted=result.counted)
    notices.decided(session, row)
    return ApprovalState.APPROVED, result.summary()


def voter_list(actors: list[str]) -> str:
    """The audit actor of a decision several people made."""
    return ",".join(actors)[:200]
