"""Data-aware triggers: every update of a dataset, from any system, once; how far each
`after: {datasets: [...], mode: all}` trigger has consumed them; and how far the watcher
has read each system's asset events (durable, so a restart loses and repeats nothing)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class DatasetUpdate(Base):
    """A dataset was written: by an Interlock node's `produces:`, a Dagster materialization,
    an Airflow asset event. `ref` names the update in its source, so the same update seen
    by push and by the watcher is one row (the unique key) and fires once."""

    __tablename__ = "dataset_updates"
    __table_args__ = (Index("ix_dataset_updates_dataset", "dataset", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(500), unique=True)
    dataset: Mapped[str] = mapped_column(Text)          # `<namespace>/<name>`
    system: Mapped[str] = mapped_column(String(200))    # who wrote it (`interlock` for a node)
    job_id: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(String(250))
    partition: Mapped[str | None] = mapped_column(String(250))
    details: Mapped[dict[str, Any]]                     # metadata / extra, bounded
    at: Mapped[datetime]


class DatasetWait(Base):
    """One `mode: all` trigger: the newest update of each of its datasets it has consumed.
    Locked while an update is considered, so two updates committed at once cannot both
    miss that the set became complete."""

    __tablename__ = "dataset_waits"

    key: Mapped[str] = mapped_column(String(500), primary_key=True)  # flow + its datasets
    consumed: Mapped[dict[str, Any]]                    # dataset -> last update id consumed
    updated_at: Mapped[datetime]


class WatchPosition(Base):
    """How far the watcher has read one stream of one system (e.g. its asset events)."""

    __tablename__ = "watch_positions"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # system + stream
    position: Mapped[str] = mapped_column(Text)  # the adapter's own cursor (JSON)
    updated_at: Mapped[datetime]
