"""Deadlines of runs and nodes whose flow has `sla:` (`interlock.deadlines`): one row per
run (node '') and per node with its own `sla:`, its due instant, and the flags the monitor
sets once each by a compare-and-set: LATE (`state`) and at_risk (`at_risk_at`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base

RUN_LEVEL = ""  # the `node_id` of a run's own deadline


class DeadlineState(StrEnum):
    WATCHING = "watching"  # not done, due not passed (or not known yet: a node not started)
    MET = "met"            # succeeded at or before due
    LATE = "late"          # due passed before it succeeded (flagged, audited, notified)
    VOID = "void"          # cancelled or skipped before due: nobody waits for it any more


class Deadline(Base):
    __tablename__ = "deadlines"
    __table_args__ = (UniqueConstraint("run_id", "node_id"),
                      Index("ix_deadlines_state_due", "state", "due_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # No foreign key: retention purges runs without knowing this table (rows outlive them).
    run_id: Mapped[str] = mapped_column(String(40))
    node_id: Mapped[str] = mapped_column(String(128))   # RUN_LEVEL for the run itself
    due_at: Mapped[datetime | None]                      # None: a node not started yet
    state: Mapped[str] = mapped_column(String(16))       # DeadlineState
    at_risk_at: Mapped[datetime | None]                  # when at_risk was raised (once)
    cause_node: Mapped[str | None] = mapped_column(String(128))  # the estimate's bottleneck
    estimate_at: Mapped[datetime | None]                 # the finish estimated then
    late_at: Mapped[datetime | None]                     # when LATE was flagged
