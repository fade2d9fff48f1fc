"""Persisted state changes: a compare-and-set update plus an append-only state event.

These are the only functions that write a `state` column. Each checks the transition
table first (`interlock.states.transition`) and returns False when the row was not in
the expected state any more (another worker got there first): callers then re-read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.states import NodeState, RunState, SkipCause, transition
from interlock.store import audit
from interlock.store.tables import (
    ATTEMPTS,
    NODE_RUNS,
    RUNS,
    Attempt,
    Entity,
    StateEvent,
    rowcount,
)

NUL_SHOWN = "\ufffd"
# Core statements, not ORM objects: the hot path writes events without a unit of work.
STATE_EVENTS = cast(Table, StateEvent.__table__)
INSERT_EVENTS = insert(STATE_EVENTS)  # one statement object: compiled once, rows as parameters
INSERT_ATTEMPT = insert(ATTEMPTS).returning(ATTEMPTS.c.id)
EVENT_BUFFER = "interlock.state_events"  # session.info: the events of a `batched_events` block


@contextmanager
def batched_events(session: Session) -> Iterator[None]:
    """The state events recorded in the block go to the store in one statement at its end
    (a planning pass records about ten). Nothing in the block may read them back; no
    savepoint may roll back inside it. A block raising writes none (its transaction is
    rolled back). Nested blocks write at the outermost one's end."""
    if EVENT_BUFFER in session.info:
        yield
        return
    rows: list[dict[str, Any]] = []
    session.info[EVENT_BUFFER] = rows
    try:
        yield
    finally:
        session.info.pop(EVENT_BUFFER, None)
    if rows:
        session.execute(INSERT_EVENTS, rows)


def set_run_state(session: Session, *, run_id: str, expected: RunState, to: RunState,
                  actor: str, reason: str | None = None, origin: str = audit.LOCAL_ORIGIN,
                  **values: Any) -> bool:
    """Run changes are also audited (hash-chained), in the same transaction; node and
    attempt changes are kept in `state_events` only."""
    transition(expected, to)
    reason, values = storable(reason), storable(values)
    at = clock.now()
    result = session.execute(_CAS[RUNS.name], {
        **values, "state": to.value, "updated_at": at, "reason": reason,
        WHERE_ID: run_id, WHERE_STATE: expected.value})
    changed = _record(session, rowcount(result), run_id=run_id, entity=Entity.RUN, node_id=None,
                      attempt=None, expected=expected, to=to, actor=actor, reason=reason, at=at)
    if changed:
        audit.record(session, actor=actor, action=audit.Action.RUN_STATE,
                     target=f"runs/{run_id}", origin=origin, before={"state": expected.value},
                     after={"state": to.value, "reason": reason})
    return changed


def set_node_state(session: Session, *, run_id: str, node_id: str, expected: NodeState,
                   to: NodeState, actor: str, reason: str | None = None,
                   skip_cause: SkipCause | None = None, **values: Any) -> bool:
    """``skip_cause`` is required for SKIPPED and refused otherwise (every change rewrites it)."""
    transition(expected, to)
    if (skip_cause is None) is (to is NodeState.SKIPPED):
        raise ValueError(f"node `{node_id}`: a skip cause goes with SKIPPED and only with it "
                         f"(to {to.value}, skip_cause {skip_cause})")
    reason, values = storable(reason), storable(values)
    at = clock.now()
    result = session.execute(_CAS[NODE_RUNS.name], {
        **values, "state": to.value, "updated_at": at, "reason": reason,
        "skip_cause": skip_cause.value if skip_cause else None,
        WHERE_ID: run_id, WHERE_NODE: node_id, WHERE_STATE: expected.value})
    return _record(session, rowcount(result), run_id=run_id, entity=Entity.NODE, node_id=node_id,
                   attempt=None, expected=expected, to=to, actor=actor, reason=reason, at=at)


def set_attempt_state(session: Session, *, attempt: Attempt, expected: NodeState, to: NodeState,
                      actor: str, reason: str | None = None, **values: Any) -> bool:
    transition(expected, to)
    reason, values = storable(reason), storable(values)
    at = clock.now()
    result = session.execute(_CAS[ATTEMPTS.name], {
        **values, "state": to.value, WHERE_ID: attempt.id, WHERE_STATE: expected.value})
    return _record(session, rowcount(result), run_id=attempt.run_id, entity=Entity.ATTEMPT,
                   node_id=attempt.node_id, attempt=attempt.number, expected=expected, to=to,
                   actor=actor, reason=reason, at=at)


def insert_settled_attempt(session: Session, *, to: NodeState, actor: str,
                           reason: str | None = None, **values: Any) -> int:
    """Insert an attempt that ended inside its submit (`dispatch.inline`) in its final
    state, with the event of its one change (QUEUED -> ``to``): what an attempt queued and
    then settled by the executor leaves, in one statement instead of two. Returns its id."""
    transition(NodeState.QUEUED, to)
    reason, values = storable(reason), storable(values)
    at = clock.now()
    attempt_id: int = session.execute(INSERT_ATTEMPT, {**values, "state": to.value}).scalar_one()
    _record(session, 1, run_id=values["run_id"], entity=Entity.ATTEMPT,
            node_id=values["node_id"], attempt=values["number"], expected=NodeState.QUEUED,
            to=to, actor=actor, reason=reason, at=at)
    return attempt_id


# Bound names of the compare-and-set's WHERE clause; the other parameters of an execution
# are the columns it sets (SQLAlchemy writes the SET clause from their names).
WHERE_ID, WHERE_NODE, WHERE_STATE = "where_id", "where_node", "where_state"
# One statement per table, built once: the hot path binds values instead of building a
# statement for each change (SQLAlchemy then spends its time on the change).
_CAS = {
    RUNS.name: update(RUNS).where(RUNS.c.id == bindparam(WHERE_ID),
                                  RUNS.c.state == bindparam(WHERE_STATE)),
    NODE_RUNS.name: update(NODE_RUNS).where(NODE_RUNS.c.run_id == bindparam(WHERE_ID),
                                            NODE_RUNS.c.node_id == bindparam(WHERE_NODE),
                                            NODE_RUNS.c.state == bindparam(WHERE_STATE)),
    ATTEMPTS.name: update(ATTEMPTS).where(ATTEMPTS.c.id == bindparam(WHERE_ID),
                                          ATTEMPTS.c.state == bindparam(WHERE_STATE)),
}


def storable(value: Any) -> Any:
    """Text as every store can keep it: PostgreSQL refuses NUL in text columns, and an
    error quoting a hostile value would roll back the transition that records it, forever.
    NUL becomes U+FFFD in a text (or each text column of a mapping of column values); JSON
    columns keep it, escaped."""
    if isinstance(value, str):
        return value.replace("\0", NUL_SHOWN) if "\0" in value else value
    if isinstance(value, dict):
        return {k: storable(v) if isinstance(v, str) else v for k, v in value.items()}
    return value


def _record(session: Session, rowcount: int, *, run_id: str, entity: Entity, node_id: str | None,
            attempt: int | None, expected: NodeState | RunState, to: NodeState | RunState,
            actor: str, reason: str | None, at: Any) -> bool:
    if rowcount != 1:
        return False
    row = {"run_id": run_id, "entity": entity.value, "node_id": node_id, "attempt": attempt,
           "from_state": expected.value, "to_state": to.value, "actor": actor,
           "reason": reason, "at": at}
    buffer = session.info.get(EVENT_BUFFER)
    if buffer is None:
        session.execute(INSERT_EVENTS, [row])
    else:
        buffer.append(row)
    return True
