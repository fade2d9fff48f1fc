"""What the dashboard endpoints return: every field described, for the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from interlock.dashboards.percentiles import Distribution
from interlock.states import NodeState, RunState
from interlock.store.views import RunSummary

NEXT_CURSOR = "pass as `cursor` (with the same filters) to get the next page; null on the last"
SUCCESS_RATE = "succeeded / finished, 0..1; null when nothing finished"


class WindowPublic(BaseModel):
    since: datetime | None = Field(description="start of the window (inclusive); null: open")
    until: datetime | None = Field(description="end of the window (exclusive); null: open")


class Latency(BaseModel):
    count: int = Field(description="how many durations the percentiles are computed from")
    p50: float | None = Field(description="median, seconds; null when count is 0")
    p95: float | None = Field(description="95th percentile, seconds (linear interpolation)")
    p99: float | None = Field(description="99th percentile, seconds (linear interpolation)")

    @classmethod
    def of(cls, found: Distribution | None) -> Latency:
        if found is None:
            return cls(count=0, p50=None, p95=None, p99=None)
        q = found.quantiles
        return cls(count=found.count, p50=q.get(0.5), p95=q.get(0.95), p99=q.get(0.99))


class DashboardRun(RunSummary):
    systems: list[str] = Field(description="systems its attempts touched, sorted: the handle's "
                                           "`system` (e.g. airflow/prod), else the adapter kind "
                                           "(e.g. script)")
    attempts: int = Field(description="attempts made so far, all nodes")
    duration_s: float | None = Field(description="created → finished, seconds; null while the "
                                                 "run is not finished")


class DashboardRunPage(BaseModel):
    window: WindowPublic
    runs: list[DashboardRun] = Field(description="newest first (created_at, then id, descending)")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class HealthStatus(StrEnum):
    OK = "ok"                # attempts ran; nothing below the thresholds
    DEGRADED = "degraded"    # see `reasons`
    UNKNOWN = "unknown"      # no attempt in the window and none in flight


class SystemHealth(BaseModel):
    status: HealthStatus = Field(description="ok, degraded (see `reasons`) or unknown (no "
                                             "attempt in the window and none in flight)")
    reasons: list[str] = Field(description="why the status is degraded, one sentence each")
    in_flight: int = Field(description="attempts queued or running now (any age)")
    overdue_polls: int = Field(description="running attempts whose next poll is over a minute "
                                           "late: no poller is keeping up with this system")
    lost: int = Field(description="attempts in the window that Interlock lost sight of")
    lost_share: float | None = Field(description="lost / finished attempts in the window")
    retried_submits: int = Field(description="attempts in the window whose submit failed with "
                                             "a transient error at least once")
    retried_share: float | None = Field(description="retried_submits / attempts in the window")


class ContactMode(StrEnum):
    PUSH = "push"  # the system pushed signed events in the window (polling is the fallback)
    POLL = "poll"  # Interlock polled it (its attempts, or the watcher); nothing was pushed
    NONE = "none"  # neither: no attempt outlived its submit, nothing pushed or watched


class Contact(BaseModel):
    mode: ContactMode = Field(description="push: the system pushed signed events in the "
                                          "window (Interlock still polls our attempts for "
                                          "their outcome: push first, poll as fallback); "
                                          "poll: nothing was pushed, Interlock asked; none: "
                                          "neither happened in the window")
    pushed_events: int = Field(description="signed events the system pushed in the window "
                                            "and Interlock accepted (audit `event.accepted`)")
    last_push: datetime | None = Field(description="the newest accepted push of the window")
    polled_attempts: int = Field(description="attempts created in the window that Interlock "
                                             "followed by polling (submitted, not finished "
                                             "within their submit)")
    foreign_runs: int = Field(description="runs Interlock did not start, seen in the window; "
                                          "with no push, the watcher found them")


class SystemStats(BaseModel):
    system: str = Field(description="a registered system (kind/name) or an adapter kind without "
                                    "systems (script, noop...)")
    kind: str = Field(description="the adapter (`uses:`) that talks to it")
    registered: bool = Field(description="declared in the systems file")
    attempts: dict[NodeState, int] = Field(description="attempts created in the window, by "
                                                       "their state now")
    success_rate: float | None = Field(description="succeeded / (succeeded + failed + timed_out "
                                                   "+ lost); cancelled attempts are left out: a "
                                                   "cancel is a person's decision")
    run_latency: Latency = Field(description="submitted → finished of attempts in the window; "
                                             "attempts finished within their submit are left out")
    queue_latency: Latency = Field(description="created → submitted of attempts in the window")
    last_seen: datetime | None = Field(description="newest time the store heard of it: an "
                                                   "attempt of the window created, submitted or "
                                                   "finished, or a foreign run seen (any time)")
    health: SystemHealth
    contact: Contact = Field(description="push or poll: how the system's news reached "
                                         "Interlock in the window")


class SystemsReport(BaseModel):
    window: WindowPublic
    systems: list[SystemStats] = Field(description="sorted by system name")


class LastRun(BaseModel):
    id: str
    state: RunState
    created_at: datetime
    finished_at: datetime | None


class FlowStats(BaseModel):
    namespace: str
    flow_id: str
    runs: dict[RunState, int] = Field(description="runs created in the window, by state now")
    total: int = Field(description="runs created in the window")
    success_rate: float | None = Field(description=SUCCESS_RATE + " (succeeded, failed or "
                                                   "cancelled)")
    duration: Latency = Field(description="created → finished of the window's finished runs")
    last_run: LastRun | None = Field(description="the newest run created before `until` (not "
                                                 "bounded by `since`); null if none")


class FlowPage(BaseModel):
    window: WindowPublic
    flows: list[FlowStats] = Field(description="every registered flow, by namespace then id; "
                                               "flows without runs in the window have zeros")
    next_cursor: str | None = Field(description=NEXT_CURSOR)
