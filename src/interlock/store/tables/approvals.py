"""Approval requests and the votes cast on them (`interlock.approvals`).

A request is one question to people: for a gated node of a run (origin `interlock`) or for a
foreign system's human-in-the-loop task (origin `foreign`, e.g. Airflow's HITL). Its `state`
column is written only by `store.approvals.set_state` (compare-and-set, checked against
`interlock.states.APPROVAL_TRANSITIONS`); votes are append-only, one per person.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class ApprovalOrigin(StrEnum):
    INTERLOCK = "interlock"  # a gate of an Interlock flow
    FOREIGN = "foreign"      # a request waiting in a foreign system, shown in our inbox


class ApprovalRequest(Base):
    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approvals_state", "state", "created_at"),
                      Index("ix_approvals_run", "run_id", "node_id"),
                      UniqueConstraint("system", "ref"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))         # ApprovalOrigin
    namespace: Mapped[str] = mapped_column(String(200))
    flow: Mapped[str | None] = mapped_column(String(330))   # namespace/flow-id
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    node_id: Mapped[str | None] = mapped_column(String(128))
    system: Mapped[str | None] = mapped_column(String(200))  # foreign: the registered system
    ref: Mapped[str | None] = mapped_column(String(1000))    # foreign: the system's request
    state: Mapped[str] = mapped_column(String(16))           # states.ApprovalState
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSON)
    reject_options: Mapped[list[str]] = mapped_column(JSON)
    inputs_spec: Mapped[dict[str, Any]]                      # name -> InputSpec (as JSON)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON)       # QuorumRule (as JSON)
    escalation: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # its rules
    payload: Mapped[dict[str, Any]]       # what is approved: the node's rendered `with:`
    payload_hash: Mapped[str] = mapped_column(String(64))
    excluded: Mapped[dict[str, Any]]      # actor -> why they may not approve (separation)
    requested_by: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(String(2000))   # foreign: the task's page
    details: Mapped[dict[str, Any]]       # foreign: job, run, task; multiple, defaults
    created_at: Mapped[datetime]
    deadline: Mapped[datetime | None]     # the gate's `timeout`
    escalate_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    next_remind_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    option: Mapped[str | None] = mapped_column(String(64))  # the decision
    decision_inputs: Mapped[dict[str, Any]]
    decided_by: Mapped[list[str]] = mapped_column(JSON)      # the actors who made it
    reason: Mapped[str | None] = mapped_column(Text)


class ApprovalVote(Base):
    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "actor"),)  # one vote per person

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("approval_requests.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    groups: Mapped[list[str]] = mapped_column(JSON)  # the voter's groups when voting
    option: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]]
    comment: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


APPROVAL_REQUESTS = cast(Table, ApprovalRequest.__table__)
