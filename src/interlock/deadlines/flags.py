"""Setting a deadline's flags, each exactly once: a compare-and-set on its row (two
monitors racing: one wins, the other changes nothing), then, in the same transaction, the
audit record, the notification and (for a run) the `after:` triggers waiting for
`state: late` / `state: at_risk`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from interlock import notify
from interlock.deadlines.estimate import Estimate
from interlock.notify import NotifyEvent
from interlock.store import audit
from interlock.store.tables import Deadline, DeadlineState, Run, rowcount
from interlock.store.tables.deadlines import RUN_LEVEL
from interlock.triggers.firing import FLOW_SYSTEM, Finished, Fired, after_finished

ACTOR = "deadline-monitor"
LATE = "late"        # the `after: {state: ...}` words, and `trigger.state`
AT_RISK = "at_risk"
_WATCHING = DeadlineState.WATCHING.value


@dataclass(frozen=True)
class Flag:
    """A flag just set (what the monitor reports)."""

    run_id: str
    node_id: str          # RUN_LEVEL for the run
    kind: str             # LATE or AT_RISK
    due_at: datetime
    cause: str | None = None


def settle(session: Session, row: Deadline, state: DeadlineState) -> bool:
    """Met or void: quiet, no record (nothing went wrong)."""
    moved = session.execute(update(Deadline).where(
        Deadline.id == row.id, Deadline.state == _WATCHING).values(state=state.value))
    return rowcount(moved) == 1


def set_due(session: Session, row: Deadline, due: datetime) -> None:
    session.execute(update(Deadline).where(Deadline.id == row.id, Deadline.state == _WATCHING)
                    .values(due_at=due))


def mark_late(session: Session, row: Deadline, run: Run, now: datetime, *, finished: bool,
              origin: str) -> tuple[Flag | None, list[Fired]]:
    assert row.due_at is not None
    moved = session.execute(update(Deadline).where(
        Deadline.id == row.id, Deadline.state == _WATCHING)
        .values(state=DeadlineState.LATE.value, late_at=now))
    if rowcount(moved) != 1:
        return None, []  # another monitor flagged it first
    facts = {"due_at": row.due_at.isoformat(), "late_by_s": _seconds(now - row.due_at),
             "run_state": run.state, "finished": finished}
    _tell(session, row, run, LATE, facts, origin)
    return Flag(run.id, row.node_id, LATE, row.due_at), _fire(session, row, run, LATE, origin)


def mark_at_risk(session: Session, row: Deadline, run: Run, est: Estimate, now: datetime, *,
                 origin: str) -> tuple[Flag | None, list[Fired]]:
    assert row.due_at is not None
    moved = session.execute(update(Deadline).where(
        Deadline.id == row.id, Deadline.state == _WATCHING, Deadline.at_risk_at.is_(None))
        .values(at_risk_at=now, cause_node=est.cause, estimate_at=est.finish))
    if rowcount(moved) != 1:
        return None, []
    facts = {"due_at": row.due_at.isoformat(), "estimate_at": est.finish.isoformat(),
             "over_by_s": _seconds(est.finish - row.due_at), "cause": est.cause,
             "no_history": list(est.unknown)}
    _tell(session, row, run, AT_RISK, facts, origin)
    flag = Flag(run.id, row.node_id, AT_RISK, row.due_at, est.cause)
    return flag, _fire(session, row, run, AT_RISK, origin)


def _tell(session: Session, row: Deadline, run: Run, kind: str, facts: dict[str, Any],
          origin: str) -> None:
    is_run = row.node_id == RUN_LEVEL
    action = {(True, LATE): audit.Action.RUN_LATE, (True, AT_RISK): audit.Action.RUN_AT_RISK,
              (False, LATE): audit.Action.NODE_LATE,
              (False, AT_RISK): audit.Action.NODE_AT_RISK}[(is_run, kind)]
    target = f"runs/{run.id}" if is_run else f"runs/{run.id}/nodes/{row.node_id}"
    audit.record(session, actor=ACTOR, action=action, target=target, origin=origin,
                 after={"flow": f"{run.namespace}/{run.flow_id}", "node": row.node_id or None,
                        **facts})
    what = f"run {run.id}" if is_run else f"node {row.node_id} of run {run.id}"
    verb = "missed its deadline" if kind == LATE else "is at risk of missing its deadline"
    event = NotifyEvent.DEADLINE_LATE if kind == LATE else NotifyEvent.DEADLINE_AT_RISK
    notify.enqueue(session, event=event, namespace=run.namespace,
                   subject=f"{run.namespace}/{run.flow_id}: {what} {verb}",
                   payload={"run": run.id, "flow": f"{run.namespace}/{run.flow_id}",
                            "node": row.node_id or None, "flag": kind, **facts})


def _fire(session: Session, row: Deadline, run: Run, kind: str, origin: str) -> list[Fired]:
    """`after: {flow: X, state: late}` (or at_risk), for a run's own deadline. The external
    id `late@<run id>` keeps this firing apart from the run's own finish (`succeeded`...)."""
    if row.node_id != RUN_LEVEL:
        return []
    ref = f"{run.namespace}/{run.flow_id}"
    finished = Finished(system=FLOW_SYSTEM, job_id=ref, external_id=f"{kind}@{run.id}",
                        state=kind, remote_status=kind, run_type="deadline", started_by=ref)
    return after_finished(session, finished, origin=origin)


def _seconds(delta: Any) -> float:
    return round(delta.total_seconds(), 3)
