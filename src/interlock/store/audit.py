"""The audit trail: append-only, each record hash-chained to the one before it.

A record is written in the transaction of the change it describes, so there is no change
without its record and no record without its change. Editing, deleting or reordering any
chained record breaks every hash after it (`verify` names the first broken link).

No transaction waits for another to append: `record` chains at once when the chain's head
is free (and then holds it until its commit, as every append used to), and otherwise
queues the record in the same transaction for a sealer that chains it right after the
commit, many transactions' records under one lock (`audit_seal`, `audit_chain`,
docs/audit.md "Appends without a hot row").
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock import clock
from interlock.store import audit_chain, audit_seal
from interlock.store.audit_chain import GENESIS, HEAD_ID, lock_head
from interlock.store.facts import within_record
from interlock.store.tables import AuditHead, AuditRecord

__all__ = ["GENESIS", "HEAD_ID", "LOCAL_ORIGIN", "Action", "Verdict", "lock_head", "record",
           "record_at_commit", "verify"]

# Where records made by this process come from when no caller is named (engine, workers).
LOCAL_ORIGIN = f"{socket.gethostname()}:{os.getpid()}"


class Action(StrEnum):
    """What an audit record says happened."""

    EVENT_ACCEPTED = "event.accepted"   # a pushed event from a foreign system, verified
    EVENT_REFUSED = "event.refused"     # a pushed event refused (bad signature, unknown system)
    TRIGGER_FIRED = "trigger.fired"     # a flow trigger started a run
    TRIGGER_REFUSED = "trigger.refused"  # a trigger matched but could not start its flow
    FLOW_REGISTERED = "flow.registered"  # a flow's source was registered (new revision or not)
    RUN_CREATED = "run.created"         # a run was created (by a person, the API or a trigger)
    RUN_STATE = "run.state"             # a run changed state (incl. cancel and retry requests)
    SCHEDULE_SKIPPED = "schedule.skipped"  # ticks missed while no scheduler ran, not fired
    CRON_CHECK = "cron.check"           # a monitored cron job's expected run changed status
    FOREIGN_ACTION = "foreign.action"   # an entry of a foreign system's own audit log
    TOKEN_CREATED = "token.created"     # an API token was made (its prefix, never the token)
    TOKEN_REVOKED = "token.revoked"
    ACCESS_DENIED = "access.denied"     # an authenticated caller was refused a mutation
    APPROVAL_REQUESTED = "approval.requested"  # a gate asked people (with its payload hash)
    APPROVAL_VOTED = "approval.voted"   # a person voted (the rules they count toward)
    APPROVAL_STATE = "approval.state"   # decided, timed out, cancelled, void, reopened
    APPROVAL_ESCALATED = "approval.escalated"  # its escalation rules may decide now
    APPROVAL_REMINDED = "approval.reminded"
    POLICY_DECISION = "policy.decision"  # a policy rule applied (allowed or not, any mode)
    POLICY_WRITTEN = "policy.written"    # a policy file written through the API (new or not)
    POLICY_DELETED = "policy.deleted"    # a policy file removed through the API
    NOTIFY_FAILED = "notify.failed"     # a webhook notification given up after its last try
    RUN_LATE = "run.late"               # a run's `sla:` deadline passed before it succeeded
    RUN_AT_RISK = "run.at_risk"         # its estimated finish (history) passes the deadline
    NODE_LATE = "node.late"             # the same for a node with its own `sla:`
    NODE_AT_RISK = "node.at_risk"
    AGENT_STEP = "agent.step"           # an agent node's model request or tool call ended


def _digest(prev_hash: str, seq: int, at: datetime, actor: str, action: str, target: str,
            before: Any, after: Any, origin: str) -> str:
    """The link of one record (kept under this name: an auditor's script may import it)."""
    return audit_chain.digest(prev_hash, seq, at, actor, action, target, before, after, origin)


def record(session: Session, *, actor: str, action: Action, target: str, origin: str,
           before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None) -> int | None:
    """Append one record in ``session``'s transaction. Returns its sequence number when it
    was chained at once (the head was free and nothing was queued: the head stays locked
    until this transaction ends); None when another transaction held the head or records
    were queued already (appends are contended): the record is then queued in this
    transaction and chained once it commits, before `session_scope()` returns."""
    entry = _entry(actor, action, target, origin, before, after)
    head = audit_seal.held_head(session) or \
        audit_chain.take_head(session, wait=False, unless_queued=True)
    if head is None:
        audit_chain.queue(session, entry)
        audit_seal.mark(session)
        return None
    head = audit_chain.chain(session, head, [entry])
    audit_chain.move_head(session, head)
    audit_seal.hold(session, head)
    return head.seq


def record_at_commit(session: Session, *, actor: str, action: Action, target: str,
                     origin: str, before: dict[str, Any] | None = None,
                     after: dict[str, Any] | None = None) -> None:
    """Append one record in ``session``'s transaction, chained when it commits: all such
    records of a transaction in one statement, the head held only for the commit (a run's
    creation and state changes, the hot path; `record` holds it from the first record to
    the commit). Inside a savepoint it is `record`: a savepoint rolled back takes it."""
    if session.in_nested_transaction():
        record(session, actor=actor, action=action, target=target, origin=origin,
               before=before, after=after)
        return
    audit_seal.defer(session, _entry(actor, action, target, origin, before, after))


def _entry(actor: str, action: Action, target: str, origin: str,
           before: dict[str, Any] | None, after: dict[str, Any] | None) -> audit_chain.Entry:
    # Never a record too deep to read back nor a part too large: callers keep facts, not
    # payloads (`store.facts`); this is the net under them.
    return audit_chain.Entry(at=clock.now(), actor=actor, action=action.value, target=target,
                             before=within_record(before), after=within_record(after),
                             origin=origin)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    broken_at: int | None = None   # sequence number of the first record that does not chain
    reason: str | None = None


def verify(session: Session, *, batch: int = 50_000,
           after: tuple[int, str] = (0, GENESIS)) -> Verdict:
    """Recompute the chain from ``after`` (the last archived record's seq and hash, as its
    anchor vouches for them; the genesis when nothing was archived)."""
    (last, prev), checked = after, 0
    expected_seq = last + 1
    for seq, at, actor, action, target, before, after_, origin, prev_hash, digest in \
            _all(session, batch, last):
        if seq != expected_seq:
            return Verdict(False, checked, expected_seq,
                           f"record {expected_seq} is missing (next is {seq})")
        if prev_hash != prev or digest != _digest(prev, seq, at, actor, action, target, before,
                                                  after_, origin):
            return Verdict(False, checked, seq, f"record {seq} does not match its hash")
        prev, expected_seq, checked = digest, expected_seq + 1, checked + 1
    head = session.get(AuditHead, HEAD_ID)
    if head is not None and (head.seq, head.hash) != (expected_seq - 1, prev):
        return Verdict(False, checked, expected_seq,
                       f"the chain ends at record {expected_seq - 1} but its head says "
                       f"{head.seq}")
    return Verdict(True, checked)


_COLUMNS = (AuditRecord.seq, AuditRecord.at, AuditRecord.actor, AuditRecord.action,
            AuditRecord.target, AuditRecord.before, AuditRecord.after, AuditRecord.origin,
            AuditRecord.prev_hash, AuditRecord.hash)


def _all(session: Session, batch: int, last: int = 0) -> Iterator[Any]:
    """Plain rows in chain order after ``last``, a batch at a time (no ORM objects: 1M
    records verify in seconds, not minutes)."""
    while True:
        rows = session.execute(select(*_COLUMNS).where(AuditRecord.seq > last)
                               .order_by(AuditRecord.seq).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1][0]
