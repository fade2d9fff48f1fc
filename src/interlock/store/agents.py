"""Agent sessions and steps (`docs/agents.md`): the lease that keeps one worker on one
agent at a time, steps recorded before their work, usage summed from the rows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.store.tables import AgentSession, AgentStep, StepKind, StepState, rowcount

COUNTED_TOOLS = (StepState.STARTED.value, StepState.DONE.value, StepState.FAILED.value)
STEP_FIELDS = frozenset(c.key for c in AgentStep.__table__.columns) - {
    "id", "run_id", "node_id", "attempt", "seq", "kind", "state", "idempotency_key",
    "started_at"}


def open_session(session: Session, *, key: str, run_id: str, node_id: str, attempt: int,
                 params: dict[str, Any], messages: list[dict[str, Any]]) -> bool:
    """True when this call created it; False when it existed (a twin submit)."""
    try:
        with session.begin_nested():
            session.add(AgentSession(key=key, run_id=run_id, node_id=node_id, attempt=attempt,
                                     params=params, messages=messages,
                                     started_at=clock.now()))
    except IntegrityError:
        return False
    return True


def take(session: Session, key: str, *, owner: str, lease_s: float) -> AgentSession | None:
    now = clock.now()
    moved = session.execute(
        update(AgentSession).where(
            AgentSession.key == key, AgentSession.outcome.is_(None),
            or_(AgentSession.owner.is_(None), AgentSession.owner == owner,
                AgentSession.lease_until < now))
        .values(owner=owner, lease_until=now + timedelta(seconds=lease_s)))
    if rowcount(moved) != 1:
        return None
    return session.get(AgentSession, key)


def held(session: Session, key: str, owner: str, *, renew_s: float | None = None) -> bool:
    """Whether ``owner`` still holds the session (renewing its lease); the check every
    write makes, so a worker whose lease ran out cannot write over its successor."""
    values: dict[str, Any] = {"owner": owner}
    if renew_s is not None:
        values["lease_until"] = clock.now() + timedelta(seconds=renew_s)
    moved = session.execute(update(AgentSession).where(
        AgentSession.key == key, AgentSession.owner == owner, AgentSession.outcome.is_(None))
        .values(**values))
    return rowcount(moved) == 1


def release(session: Session, key: str, owner: str) -> None:
    session.execute(update(AgentSession).where(AgentSession.key == key,
                                               AgentSession.owner == owner)
                    .values(owner=None, lease_until=None))


def last_step(session: Session, s: AgentSession) -> AgentStep | None:
    return session.scalar(select(AgentStep).where(
        AgentStep.run_id == s.run_id, AgentStep.node_id == s.node_id,
        AgentStep.attempt == s.attempt).order_by(AgentStep.seq.desc()).limit(1))


def begin_step(session: Session, s: AgentSession, *, seq: int, kind: StepKind,
               fields: dict[str, Any],
               state: StepState = StepState.STARTED) -> AgentStep | None:
    step = AgentStep(run_id=s.run_id, node_id=s.node_id, attempt=s.attempt, seq=seq,
                     kind=kind.value, state=state.value,
                     idempotency_key=f"{s.key}.s{seq}", started_at=clock.now(),
                     **_known(fields))
    try:
        with session.begin_nested():
            session.add(step)
    except IntegrityError:
        return None  # a twin recorded this step first
    return step


def step_of(session: Session, s: AgentSession, seq: int) -> AgentStep | None:
    return session.scalar(select(AgentStep).where(
        AgentStep.run_id == s.run_id, AgentStep.node_id == s.node_id,
        AgentStep.attempt == s.attempt, AgentStep.seq == seq))


def resume_step(step: AgentStep) -> None:
    """A waiting tool call, approved: it runs now. Its start stays when it was asked, so
    its span holds the approval span (the request keeps when it was asked and decided)."""
    step.state = StepState.STARTED.value


def end_step(step: AgentStep, *, state: StepState, fields: dict[str, Any],
             ran_from: datetime | None = None) -> None:
    """``ran_from``: when a call that waited was released (its decision); its duration is
    the tool's from then, not the wait's (the span, from start to end, shows both)."""
    now = clock.now()
    for name, value in _known(fields).items():
        setattr(step, name, value)
    step.state, step.ended_at = state.value, now
    if step.duration_ms is None:
        began = max(step.started_at, ran_from) if ran_from else step.started_at
        step.duration_ms = max((now - began).total_seconds() * 1000, 0.0)


def _known(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - STEP_FIELDS
    assert not unknown, f"not agent step fields: {sorted(unknown)}"
    return fields


def usage(session: Session, run_id: str, node_id: str) -> dict[str, Any]:
    where = (AgentStep.run_id == run_id, AgentStep.node_id == node_id)
    models = session.execute(select(
        func.count(), func.coalesce(func.sum(AgentStep.input_tokens), 0),
        func.coalesce(func.sum(AgentStep.output_tokens), 0),
        func.coalesce(func.sum(AgentStep.cost), 0.0))
        .where(*where, AgentStep.kind == StepKind.MODEL.value,
               AgentStep.state != StepState.ABANDONED.value)).one()
    tools = session.scalar(select(func.count()).where(
        *where, AgentStep.kind == StepKind.TOOL.value, AgentStep.state.in_(COUNTED_TOOLS)))
    first = session.scalar(select(func.min(AgentSession.started_at)).where(
        AgentSession.run_id == run_id, AgentSession.node_id == node_id))
    wall = (clock.now() - first).total_seconds() if first else 0.0
    return {"model_requests": int(models[0]), "input_tokens": int(models[1]),
            "output_tokens": int(models[2]), "cost": float(models[3]),
            "tool_calls": int(tools or 0), "wall_s": wall}


def close(session: Session, key: str, *, owner: str | None, outcome: dict[str, Any]) -> bool:
    where = [AgentSession.key == key, AgentSession.outcome.is_(None)]
    if owner is not None:
        where.append(AgentSession.owner == owner)
    moved = session.execute(update(AgentSession).where(*where).values(
        outcome=outcome, ended_at=clock.now(), owner=None, lease_until=None))
    return rowcount(moved) == 1


def steps(session: Session, run_id: str, node_id: str) -> list[AgentStep]:
    return list(session.scalars(select(AgentStep).where(
        AgentStep.run_id == run_id, AgentStep.node_id == node_id)
        .order_by(AgentStep.attempt, AgentStep.seq)))


def sessions(session: Session, run_id: str, node_id: str) -> list[AgentSession]:
    return list(session.scalars(select(AgentSession).where(
        AgentSession.run_id == run_id, AgentSession.node_id == node_id)
        .order_by(AgentSession.attempt)))
