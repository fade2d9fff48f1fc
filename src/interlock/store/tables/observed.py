"""What Interlock sees of foreign systems and what it fired: external runs, trigger firings,
schedule cursors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class ExternalRun(Base):
    """A run in a foreign system, seen by push or poll: ours (attempt_id set) or foreign."""

    __tablename__ = "external_runs"
    __table_args__ = (UniqueConstraint("system", "job_id", "external_id"),
                      Index("ix_external_runs_attempt", "attempt_id"),  # traces
                      Index("ix_external_runs_seen", "system", "updated_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str] = mapped_column(String(250))        # DAG id, Dagster job, cron job...
    external_id: Mapped[str] = mapped_column(String(250))   # the foreign run id
    state: Mapped[str] = mapped_column(String(16))          # NodeState, through the mapping
    remote_status: Mapped[str] = mapped_column(String(64))  # the system's own word
    run_type: Mapped[str | None] = mapped_column(String(64))
    attempt_id: Mapped[int | None] = mapped_column(Integer)  # set when Interlock started it
    details: Mapped[dict[str, Any]]
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class TriggerFiring(Base):
    """One firing of a flow trigger; the unique key makes a second firing of it a no-op."""

    __tablename__ = "trigger_firings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)  # flow + what fired it
    namespace: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[str] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(40))
    fired_at: Mapped[datetime]


class ScheduleCursor(Base):
    """How far the scheduler got with one `schedule:` trigger: the last tick it handled.

    Schedulers lock this row while they fire, so two of them never handle a tick twice;
    the row survives restarts, so downtime is caught up by the trigger's policy.
    """

    __tablename__ = "schedule_cursors"

    key: Mapped[str] = mapped_column(String(500), primary_key=True)  # flow + cron + timezone
    namespace: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[str] = mapped_column(String(128))
    last_tick: Mapped[datetime]
    updated_at: Mapped[datetime]
