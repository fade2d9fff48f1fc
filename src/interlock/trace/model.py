"""What `GET /api/v1/runs/{id}/trace` returns and `interlock trace RUN --json` prints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from interlock.states import NodeState
from interlock.store.views import RunSummary


class SpanKind(StrEnum):
    RUN = "run"                  # an Interlock run, from its creation to its end
    ATTEMPT = "attempt"          # one attempt of one node
    FOREIGN_RUN = "foreign_run"  # a run in a foreign system (Airflow DAG run, Dagster run...)
    MODEL = "model"              # an agent's model request (`docs/agents.md`)
    TOOL = "tool"                # an agent's tool call
    APPROVAL = "approval"        # people deciding: a node's gate, or an agent's tool call


class Span(BaseModel):
    """One bar of the timeline."""

    id: str = Field(description="`run:<id>`, `attempt:<run>/<node>/<n>`, "
                                "`foreign:<system>/<job>/<external id>`, an agent's "
                                "`step:<run>/<node>/<n>/<seq>` or `approval:<id>`")
    parent_id: str | None = Field(description=(
        "what this span belongs to or was caused by: an attempt's run, a foreign run's "
        "attempt (when Interlock started it), a run's triggering run"))
    kind: SpanKind
    upstream: bool = Field(description="part of what triggered the traced run, not the run")
    label: str
    run_id: str | None = Field(description="the Interlock run it belongs to, if any")
    node_id: str | None = None
    attempt: int | None = None
    uses: str | None = None
    system: str | None = Field(default=None, description="registered system, e.g. "
                               "airflow/prod; None for work Interlock runs itself")
    job_id: str | None = Field(default=None, description="DAG id, Dagster job, cron job, flow")
    external_id: str | None = Field(default=None, description="the run's id in its system")
    state: str = Field(description="Interlock's word: a NodeState, or a RunState for runs")
    remote_status: str | None = None
    queued_at: datetime | None = None
    submitted_at: datetime | None = None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None = Field(description="finished_at - started_at; None until both")
    error: str | None = None
    log_excerpt: str | None = None
    deep_link: str | None = Field(default=None, description="the run in its own UI, or a "
                                  "file:// link to a local attempt's directory or log")
    approval_id: str | None = Field(default=None, description="an agent's tool call: the "
                                    "approval request it waited for")


class NodeTrace(BaseModel):
    """A node of a traced run (nodes without attempts, e.g. skipped ones, are here too)."""

    run_id: str
    id: str
    uses: str
    state: NodeState
    needs: list[str]
    reason: str | None
    error: str | None
    attempts: list[str] = Field(description="ids of its attempt spans, oldest first")


class RootCause(BaseModel):
    """The first failure in causal order."""

    span_id: str | None
    node_id: str | None = Field(description="the failed node; for a foreign run, its failed "
                                "task or step when known")
    run_id: str | None = Field(description="the Interlock run it happened in; None if foreign")
    system: str | None = Field(description="the registered system (e.g. airflow/prod); None "
                               "for work Interlock runs itself (script, noop...)")
    uses: str | None
    external_id: str | None
    error: str | None
    log_excerpt: str | None
    deep_link: str | None
    at: datetime | None = Field(description="when the failure was recorded")
    path: list[str] = Field(description="the chain from the symptom back to the cause, "
                            "e.g. [\"report skipped: upstream extract failed\", "
                            "\"extract failed: exit 3\"]")
    also_failed: list[str] = Field(default_factory=list, description=(
        "other nodes of the run that failed independently (later, or with no failed upstream)"))


class RunTrace(BaseModel):
    """A run end to end across systems: the data of a Gantt chart and its root cause."""

    run: RunSummary
    started_at: datetime = Field(description="start of the earliest span")
    finished_at: datetime | None = Field(description="end of the latest span; None while "
                                         "anything runs")
    spans: list[Span] = Field(description="every span, upstream ones included, by start time")
    nodes: list[NodeTrace] = Field(description="the nodes of the traced run and of the "
                                   "upstream Interlock runs, in graph order")
    root_cause: RootCause | None = Field(description="None when nothing failed")
    notes: list[str] = Field(default_factory=list, description=(
        "what could not be traced: an upstream run that no longer exists, a cut chain..."))
