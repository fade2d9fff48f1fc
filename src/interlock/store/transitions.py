"""Persisted state changes: a compare-and-set update plus an append-only state event.

These are the only functions that write a `state` column. Each checks the transition
table first (`interlock.states.transition`) and returns False when the row was not in
the expected state any more (another worker got there first): callers then re-read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, insert, update
from sqlalchemy.orm import ORMExecuteState, Session

from interlock import clock
from interlock.errors import InterlockError
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
INSERT_ATTEMPTS = insert(ATTEMPTS)
EVENT_BUFFER = "interlock.state_events"  # session.info: the events of a `batched_events` block
WRITE_BUFFER = "interlock.row_writes"    # session.info: the changes of a `coalesced_writes` block
LOST = "interlock.row_writes.lost"       # session.info: one of them found its row changed


class LostRace(InterlockError):
    """A compare-and-set found its row changed under the transaction: roll it back, read
    again and plan again."""


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


@dataclass
class _Write:
    """One row's changes in a `coalesced_writes` block: the state it had when the block
    first changed it (what the compare-and-set expects), and the values it has now."""

    table: str
    where: dict[str, str]
    expected: str
    values: dict[str, Any]


@dataclass
class _Pending:
    """What a `coalesced_writes` block has not written yet."""

    changes: dict[tuple[str, ...], _Write] = field(default_factory=dict)  # by table and key
    attempts: list[dict[str, Any]] = field(default_factory=list)  # settled, ids not needed

    def __bool__(self) -> bool:
        return bool(self.changes or self.attempts)


@contextmanager
def coalesced_writes(session: Session) -> Iterator[None]:
    """The state changes of runs and nodes in the block (a planning pass changes a node
    twice: queued, then its outcome) go to the store once per row: the last values, against
    the state the row had when the block first changed it, at the block's end, or before
    any statement but an INSERT runs in the block (so a read sees them). Each change still
    records its own state event. A row that changed under the block raises LostRace there
    (and at the block's end, however the caller handled it): the caller rolls back, as a
    compare-and-set that failed at once would make it. Attempts settled in submit whose id
    nobody asks for (`insert_settled_attempt(deferrable=True)`) are inserted with them, in
    one statement."""
    if WRITE_BUFFER in session.info:
        yield
        return
    pending = _Pending()
    session.info[WRITE_BUFFER] = pending
    try:
        yield
    finally:
        session.info.pop(WRITE_BUFFER, None)
        lost = session.info.pop(LOST, False)
    if lost:
        raise LostRace("a row changed under this transaction")
    _write(session, pending)


def _defer(pending: _Pending, table: str, where: dict[str, str], expected: str,
           values: dict[str, Any]) -> None:
    key = (table, *where.values())
    write = pending.changes.get(key)
    if write is None:
        pending.changes[key] = _Write(table, where, expected, values)
        return
    if write.values["state"] != expected:  # the caller's idea of the row is not the block's
        raise LostRace(f"{table} {key[1:]}: expected {expected}, the block left it "
                       f"{write.values['state']}")
    write.values.update(values)


def _write(session: Session, pending: _Pending) -> None:
    """Send what is buffered: the attempts in one statement, then the changes (rows
    changing the same columns in one executemany)."""
    if pending.attempts:
        attempts, pending.attempts = pending.attempts, []
        session.execute(INSERT_ATTEMPTS, attempts)
    if not pending.changes:
        return
    batches: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for write in pending.changes.values():
        params = {**write.values, **write.where, WHERE_STATE: write.expected}
        batches.setdefault((write.table, *sorted(params)), []).append(params)
    pending.changes.clear()
    for (table, *_), params in batches.items():
        if rowcount(session.execute(_CAS[table], params)) != len(params):
            session.info[LOST] = True
            raise LostRace(f"a {table} row changed under this transaction")


@event.listens_for(Session, "do_orm_execute")
def _written_before_statements(state: ORMExecuteState) -> None:
    """What a `coalesced_writes` block buffered is written before anything reads or
    changes rows; an INSERT neither reads nor overwrites them."""
    pending = state.session.info.get(WRITE_BUFFER)
    if pending and not state.is_insert:
        _write(state.session, pending)


def set_run_state(session: Session, *, run_id: str, expected: RunState, to: RunState,
                  actor: str, reason: str | None = None, origin: str = audit.LOCAL_ORIGIN,
                  **values: Any) -> bool:
    """Run changes are also audited (hash-chained), in the same transaction; node and
    attempt changes are kept in `state_events` only."""
    transition(expected, to)
    reason, values = storable(reason), storable(values)
    at = clock.now()
    changed = _record(session, _compare_and_set(
        session, RUNS.name, {WHERE_ID: run_id}, expected,
        {**values, "state": to.value, "updated_at": at, "reason": reason}),
        run_id=run_id, entity=Entity.RUN, node_id=None, attempt=None, expected=expected,
        to=to, actor=actor, reason=reason, at=at)
    if changed:
        audit.record_at_commit(session, actor=actor, action=audit.Action.RUN_STATE,
                               target=f"runs/{run_id}", origin=origin,
                               before={"state": expected.value},
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
    changed = _compare_and_set(session, NODE_RUNS.name, {WHERE_ID: run_id, WHERE_NODE: node_id},
                               expected, {**values, "state": to.value, "updated_at": at,
                                          "reason": reason,
                                          "skip_cause": skip_cause.value if skip_cause else None})
    return _record(session, changed, run_id=run_id, entity=Entity.NODE, node_id=node_id,
                   attempt=None, expected=expected, to=to, actor=actor, reason=reason, at=at)


def _compare_and_set(session: Session, table: str, where: dict[str, str],
                     expected: NodeState | RunState, values: dict[str, Any]) -> int:
    """Rows changed: now, or (in a `coalesced_writes` block) 1, checked when written."""
    pending = session.info.get(WRITE_BUFFER)
    if pending is not None:
        _defer(pending, table, where, expected.value, values)
        return 1
    return rowcount(session.execute(_CAS[table], {**values, **where,
                                                   WHERE_STATE: expected.value}))


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
                           reason: str | None = None, deferrable: bool = False,
                           **values: Any) -> int | None:
    """Insert an attempt that ended inside its submit (`dispatch.inline`) in its final
    state, with the event of its one change (QUEUED -> ``to``): what an attempt queued and
    then settled by the executor leaves, in one statement instead of two. Returns its id;
    None when ``deferrable`` (the caller needs no id) and a `coalesced_writes` block will
    insert it with the others."""
    transition(NodeState.QUEUED, to)
    reason, values = storable(reason), storable(values)
    at = clock.now()
    pending = session.info.get(WRITE_BUFFER) if deferrable else None
    attempt_id: int | None = None
    if pending is not None:
        pending.attempts.append({**values, "state": to.value})
    else:
        attempt_id = session.execute(INSERT_ATTEMPT, {**values, "state": to.value}).scalar_one()
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
    append_event(session, {"run_id": run_id, "entity": entity.value, "node_id": node_id,
                           "attempt": attempt, "from_state": expected.value,
                           "to_state": to.value, "actor": actor, "reason": reason, "at": at})
    return True


def append_event(session: Session, row: dict[str, Any]) -> None:
    """A state event (every column of `state_events` but its id): kept for the end of a
    `batched_events` block, or written now outside one."""
    buffer = session.info.get(EVENT_BUFFER)
    if buffer is None:
        session.execute(INSERT_EVENTS, [row])
    else:
        buffer.append(row)
