"""Expected runs of monitored cron jobs and whether they came on time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class CheckStatus(StrEnum):
    EXPECTED = "expected"  # due, still within its grace
    ON_TIME = "on_time"    # started within the grace
    LATE = "late"          # grace over and not started; may still come
    RAN_LATE = "ran_late"  # started after the grace, before it was missed
    MISSED = "missed"      # no run by `missed_after`


class CronCheck(Base):
    """One expected run of a monitored cron job, and whether it came on time."""

    __tablename__ = "cron_checks"
    __table_args__ = (UniqueConstraint("system", "job_id", "due_at"),
                      Index("ix_cron_checks_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    system: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str] = mapped_column(String(250))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))          # CheckStatus
    external_id: Mapped[str | None] = mapped_column(String(250))  # the run that answered
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
