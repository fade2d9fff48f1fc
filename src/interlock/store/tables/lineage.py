"""The lineage graph's tables: jobs and datasets of every system, and the edges between them.

    lineage_jobs ──< lineage_edges >── lineage_datasets      the graph (one edge per source)
    lineage_jobs ──< lineage_job_parents                     runs of a job spawned by another's
    lineage_runs, lineage_io                                 runs, and who read or wrote what when
    lineage_events                                           every accepted OpenLineage event

Traversal reads only `lineage_edges`, through its primary key (job -> datasets) and
`ix_lineage_edges_dataset` (dataset -> jobs); both cover the columns it reads.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import ForeignKey, Index, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base

NAMESPACE_MAX = 250
NAME_MAX = 500


class Direction(StrEnum):
    """Which way data moves between a job and a dataset."""

    IN = "in"    # the job reads the dataset
    OUT = "out"  # the job writes the dataset


class Source(StrEnum):
    """Who told Interlock about an edge or a run."""

    DECLARED = "declared"        # a flow node's `produces:` / `consumes:`
    OBSERVED = "observed"        # an adapter saw it (Airflow outlets, Dagster materializations)
    OPENLINEAGE = "openlineage"  # a RunEvent posted to /api/v1/lineage
    EMITTED = "emitted"          # Interlock's own event for one of its attempts


class LineageJob(Base):
    __tablename__ = "lineage_jobs"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(NAMESPACE_MAX))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    system: Mapped[str] = mapped_column(String(200))  # interlock, airflow/prod, cron/db1...
    facets: Mapped[dict[str, Any]]                    # the newest value of each job facet
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LineageDataset(Base):
    __tablename__ = "lineage_datasets"
    __table_args__ = (UniqueConstraint("namespace", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(NAMESPACE_MAX))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    facets: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LineageEdge(Base):
    """A job reads (`in`) or writes (`out`) a dataset, as one source says."""

    __tablename__ = "lineage_edges"
    __table_args__ = (Index("ix_lineage_edges_dataset", "dataset_id", "direction", "job_id"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("lineage_jobs.id"), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)   # Direction
    dataset_id: Mapped[int] = mapped_column(ForeignKey("lineage_datasets.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)     # Source
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class LineageJobParent(Base):
    """Runs of `child` were spawned by runs of `parent` (an OpenLineage parent facet):
    an Airflow task by its DAG, a DAG run by the Interlock node that triggered it."""

    __tablename__ = "lineage_job_parents"
    __table_args__ = (Index("ix_lineage_job_parents_child", "child_id", "parent_id"),)

    parent_id: Mapped[int] = mapped_column(ForeignKey("lineage_jobs.id"), primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("lineage_jobs.id"), primary_key=True)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class LineageRun(Base):
    """One run of a job, as its events describe it; facets keep the newest of each name."""

    __tablename__ = "lineage_runs"
    __table_args__ = (Index("ix_lineage_runs_job", "job_id", "event_time"),)

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the OpenLineage uuid
    job_id: Mapped[int] = mapped_column(ForeignKey("lineage_jobs.id"))
    state: Mapped[str | None] = mapped_column(String(16))  # the newest event's eventType
    event_time: Mapped[datetime]                            # the newest event's time
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    parent_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    parent_job_namespace: Mapped[str | None] = mapped_column(String(NAMESPACE_MAX))
    parent_job_name: Mapped[str | None] = mapped_column(String(NAME_MAX))
    source: Mapped[str] = mapped_column(String(16))
    facets: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class LineageIO(Base):
    """A run read or wrote a dataset: the dataset's history, newest first by `at`."""

    __tablename__ = "lineage_io"
    __table_args__ = (UniqueConstraint("run_id", "dataset_id", "direction"),
                      Index("ix_lineage_io_history", "dataset_id", "at", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("lineage_datasets.id"))
    job_id: Mapped[int] = mapped_column(ForeignKey("lineage_jobs.id"))
    run_id: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(3))
    state: Mapped[str | None] = mapped_column(String(16))  # eventType of the newest event
    source: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class LineageEvent(Base):
    """Every accepted event, as received; `key` makes a replayed event a no-op."""

    __tablename__ = "lineage_events"
    __table_args__ = (Index("ix_lineage_events_run", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of runId|type|time
    kind: Mapped[str] = mapped_column(String(16))              # run, dataset or job
    run_id: Mapped[str | None] = mapped_column(String(36))
    event_type: Mapped[str | None] = mapped_column(String(16))
    event_time: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


JOBS = cast(Table, LineageJob.__table__)
DATASETS = cast(Table, LineageDataset.__table__)
EDGES = cast(Table, LineageEdge.__table__)
JOB_PARENTS = cast(Table, LineageJobParent.__table__)
RUNS = cast(Table, LineageRun.__table__)
IO = cast(Table, LineageIO.__table__)
EVENTS = cast(Table, LineageEvent.__table__)
