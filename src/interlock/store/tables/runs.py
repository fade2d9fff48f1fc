"""Flow revisions, runs, node runs, attempts, their state events and the outbox."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class Entity(StrEnum):
    """What a state event is about."""

    RUN = "run"
    NODE = "node"
    ATTEMPT = "attempt"


class TaskKind(StrEnum):
    """Work the outbox hands to dispatch; each kind has one handler.

    Polls are not outbox work: the reconciler sends them as `PollBatch`es of the attempts
    whose `next_poll_at` is due. (A `poll` kind existed once and was never written; a row of
    it would be skipped by `outbox.claim_overdue`.)
    """

    ADVANCE = "advance"  # plan a run again
    EXECUTE = "execute"  # submit an attempt to its adapter
    CANCEL = "cancel"    # ask the foreign system to stop an attempt
    REPORT = "report"    # tell other systems about the datasets a succeeded attempt produced
    EXPORT = "export"    # send a finished run's spans to the OpenTelemetry collector


class FlowRevision(Base):
    __tablename__ = "flow_revisions"
    __table_args__ = (UniqueConstraint("namespace", "flow_id", "revision"),
                      UniqueConstraint("namespace", "flow_id", "digest"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[str] = mapped_column(String(128))
    revision: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))      # sha256 of the source text
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(200))  # its author (separation)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_state_created", "state", "created_at"),
                      Index("ix_runs_created", "created_at", "id"),  # dashboards, run pages
                      Index("ix_runs_flow", "namespace", "flow_id", "created_at"),
                      Index("ix_runs_wake_at", "wake_at"),
                      Index("ix_runs_waiting", "waiting_for", "created_at"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    flow_revision_id: Mapped[int] = mapped_column(ForeignKey("flow_revisions.id"))
    namespace: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[str] = mapped_column(String(128))
    revision: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    inputs: Mapped[dict[str, Any]]
    trigger: Mapped[dict[str, Any]]
    trace_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    wake_at: Mapped[datetime | None]     # when the planner must look again with no event
    waiting_for: Mapped[str | None] = mapped_column(String(300))  # QUEUED: the full scope


class NodeRun(Base):
    __tablename__ = "node_runs"
    __table_args__ = (Index("ix_node_runs_waiting", "waiting_for", "updated_at"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    uses: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    retry_at: Mapped[datetime | None]
    retry_base: Mapped[int] = mapped_column(Integer, default=0)  # attempts before this round
    outputs: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    skip_cause: Mapped[str | None] = mapped_column(String(16))  # a SkipCause while SKIPPED
    waiting_for: Mapped[str | None] = mapped_column(String(300))  # SLOT_WAIT: the full scope
    updated_at: Mapped[datetime]


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("run_id", "node_id", "number"),
                      Index("ix_attempts_created", "created_at"),  # per-system dashboards
                      Index("ix_attempts_poll", "state", "next_poll_at"),
                      Index("ix_attempts_system_state", "system", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    node_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # the idempotency key
    uses: Mapped[str] = mapped_column(String(64))
    system: Mapped[str | None] = mapped_column(String(200))  # `with.system`: its slot's scope
    state: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]]
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    external_id: Mapped[str | None] = mapped_column(String(250), index=True)  # handle's id
    remote_status: Mapped[str | None] = mapped_column(String(200))
    outputs: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    log_excerpt: Mapped[str | None] = mapped_column(Text)
    submit_tries: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))  # host:pid that submitted it
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]
    poll_interval: Mapped[float | None] = mapped_column(Float)


class StateEvent(Base):
    """Append-only history of every state change: what, from, to, who, why, when."""

    __tablename__ = "state_events"
    __table_args__ = (Index("ix_state_events_finished", "entity", "to_state"),)  # metrics

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    entity: Mapped[str] = mapped_column(String(8))
    node_id: Mapped[str | None] = mapped_column(String(128))
    attempt: Mapped[int | None] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


class Outbox(Base):
    """Work owed after a state change, written in the same transaction as the change.

    A row is a lease: dispatch sends it, and the handler deletes it in the transaction
    that completes the work. Rows still here after `available_at` are sent again by
    the reconciler, so a worker that dies mid-task loses nothing.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_available", "available_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[str] = mapped_column(String(40), index=True)
    attempt_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]
    available_at: Mapped[datetime]
    sends: Mapped[int] = mapped_column(Integer, default=0)


# Core tables of the hot-path updates: Core statements skip the ORM's session bookkeeping.
RUNS = cast(Table, Run.__table__)
NODE_RUNS = cast(Table, NodeRun.__table__)
ATTEMPTS = cast(Table, Attempt.__table__)
OUTBOX = cast(Table, Outbox.__table__)
