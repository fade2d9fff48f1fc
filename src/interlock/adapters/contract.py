"""What every adapter promises (DESIGN.md section 3).

An adapter turns a node's rendered ``with:`` into work in a foreign system and
reports back what that system says. It is stateless between calls: everything it
needs to find its job again lives in the :class:`Handle` the store keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from interlock.errors import Rejected
from interlock.states import NodeState


class RetryMode(StrEnum):
    """How attempts after the first run (a node's `retry.mode`)."""

    NEW = "new"                    # every attempt is a new job in the foreign system
    CLEAR_FAILED = "clear_failed"  # Airflow: clear the failed tasks of the same DAG run
    FROM_FAILURE = "from_failure"  # Dagster: re-execute the failed run from its failure


class NoParams(BaseModel):
    """`with:` model of an adapter that accepts anything."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class JobSpec:
    """One attempt of one node, ready to hand to a foreign system."""

    run_id: str
    node_id: str
    attempt: int
    params: dict[str, Any]          # the node's `with:`, rendered and validated
    traceparent: str                # W3C trace context of the run
    timeout_s: float | None = None  # the node's `timeout:`, if any
    flow: str = ""                  # `namespace/flow-id` of the run
    retry_mode: RetryMode = RetryMode.NEW
    previous: Handle | None = None  # the last attempt's job, for native retry modes
    # The values of the secrets in `params` (resolved by the worker at submit): an adapter
    # keeps them off disk and out of what it returns; the executor masks what comes back.
    secrets: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Handle:
    """Where a submitted job lives: enough to poll, cancel or read its logs."""

    kind: str
    external_id: str
    system: str | None = None
    url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """What the foreign system says about one handle now."""

    handle: Handle
    state: NodeState                 # RUNNING, SUCCEEDED, FAILED, TIMED_OUT, LOST or CANCELLED
    remote_status: str               # the system's own word, kept for operators
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log_excerpt: str | None = None

    @property
    def finished(self) -> bool:
        return self.state is not NodeState.RUNNING


@dataclass(frozen=True)
class LogChunk:
    text: str
    cursor: str | None = None        # pass back to read on; None when there is no more
    truncated: bool = False


@dataclass(frozen=True)
class RemoteJob:
    """A job a system offers, as found by `discover` (for imports and mappings)."""

    system: str | None
    job_id: str
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AssetEvent:
    """Data a foreign system says it wrote: a Dagster materialization, an Airflow asset
    event. Taken in by `interlock.events.assets` (lineage and `after: {dataset: ...}`)."""

    system: str
    key: str                         # the asset in that system: Dagster key `a/b`, Airflow URI
    ref: str                         # unique in the system (the same event seen twice is one)
    at: datetime
    job_id: str | None = None        # the job or DAG whose run wrote it (None: runless)
    run_id: str | None = None
    partition: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # Dagster metadata, Airflow extra


@dataclass(frozen=True)
class AssetBatch:
    """Asset events read after a position, and the position to read after next time."""

    events: list[AssetEvent]
    position: str | None


@dataclass(frozen=True)
class ForeignEvent:
    """A state change a foreign system pushed to Interlock (a hint: polling confirms it)."""

    system: str
    job_id: str                      # DAG id, Dagster job...
    external_id: str                 # the foreign run's id
    remote_status: str
    state: NodeState                 # through the adapter's mapping
    about_run: bool = True           # False for a part of a run (an Airflow task instance)
    run_type: str | None = None      # e.g. Airflow's manual / scheduled
    started_at: datetime | None = None
    ended_at: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)
    assets: tuple[AssetEvent, ...] = ()  # data the run wrote, pushed with it


@dataclass(frozen=True)
class ForeignAction:
    """An entry of a foreign system's own audit log: who did what there (Airflow's event log:
    someone cleared a task in the UI, triggered a DAG, changed a variable)."""

    id: int                          # the system's sequence number: ingestion resumes after it
    at: datetime
    actor: str                       # the foreign user, or the system's word for itself
    action: str                      # the system's word, e.g. Airflow's `clear`
    target: str                      # e.g. dags/<dag>/runs/<run>/tasks/<task>
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ForeignApproval:
    """A human-in-the-loop request in a foreign system (Airflow's HITL `hitlDetails`): what
    Interlock's inbox shows, and what it answers through `Adapter.answer_approval`."""

    ref: str                         # unique within the system; `answer_approval` takes it back
    job_id: str                      # e.g. the DAG id
    external_id: str                 # the foreign run's id
    task: str                        # the waiting part of the run, e.g. the task id
    subject: str
    body: str | None
    options: tuple[str, ...]
    created_at: datetime
    multiple: bool = False           # several options may be chosen at once
    defaults: tuple[str, ...] = ()   # what the foreign system applies on its own timeout
    params: dict[str, Any] = field(default_factory=dict)  # the form's fields and defaults
    assigned: tuple[str, ...] = ()   # foreign users allowed to answer there; () means anyone
    responded: bool = False
    chosen: tuple[str, ...] = ()
    params_input: dict[str, Any] = field(default_factory=dict)
    responded_by: str | None = None  # the foreign user who answered (None: not yet, or unknown)
    responded_at: datetime | None = None


class Adapter(ABC):
    kind: ClassVar[str]                       # the `uses:` value
    params_model: ClassVar[type[BaseModel]] = NoParams
    # Poll spacing while a job runs: starts at the first value, doubles up to the second.
    poll_interval: ClassVar[tuple[float, float]] = (1.0, 30.0)
    # `retry.mode` values this adapter implements besides `new`.
    retry_modes: ClassVar[frozenset[RetryMode]] = frozenset()
    # Its systems are servers Interlock calls (`url` required in the systems file); False
    # for hosts that only push to Interlock (cron).
    system_has_url: ClassVar[bool] = True
    # Help of `interlock import <kind>`, offered when the adapter overrides `discover`.
    import_help: ClassVar[str] = "What the system offers -> a mapping file."
    # `submit` always returns a finished Observation at once, calls nothing outside this
    # process and may be called again with the same key to the same effect (`noop`): the
    # controller then calls it inside its planning transaction and settles the node there,
    # with no EXECUTE round trip nor a transaction of its own (`docs/dispatch.md`).
    settles_in_submit: ClassVar[bool] = False

    @abstractmethod
    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        """Start the job, idempotent on ``key``: the same key never starts a second job.

        May return a finished :class:`Observation` when the work completes within the
        call (a no-op, say); otherwise the handle to poll.
        """

    @abstractmethod
    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        """Observe many handles at once: one request per system where the API allows."""

    @abstractmethod
    def cancel(self, handle: Handle) -> None: ...

    @abstractmethod
    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk: ...

    def discover(self) -> list[RemoteJob]:
        return []

    @classmethod
    def can_discover(cls) -> bool:
        """Whether `discover` is implemented (then `interlock import <kind>` exists)."""
        return cls.discover is not Adapter.discover

    def run_link(self, ui: str, job_id: str, external_id: str, *,
                 task_id: str | None = None) -> str | None:
        """A run's page (``task_id``: that part's page) in the UI of a system whose UI is
        at ``ui`` (its `ui_url`, else its `url`); None when the system has no such page."""
        return None

    def attempt_link(self, handle: Handle, *, ui: str | None, error: str | None) -> str | None:
        """Where a person sees the job of an attempt: by default the handle's `url`. ``ui``
        is the UI of the handle's system (None if not registered); ``error`` the attempt's
        error, to point at the part of the job that failed."""
        return handle.url

    def recent_runs(self, system: str, since: datetime) -> list[ForeignEvent]:
        """Runs of ``system`` that finished at or after ``since``, ours and foreign: how
        foreign runs are observed when the system does not push (see `interlock.events.watch`)."""
        return []

    def asset_events(self, system: str, keys: Sequence[str],
                     position: str | None) -> AssetBatch:
        """Events of the assets ``keys`` of ``system`` after ``position`` (the batch's
        position from the last call, kept by the watcher across restarts; None: a first read,
        which looks a few minutes back). Oldest first; an adapter bounds how many it returns
        per call."""
        return AssetBatch([], position)

    def report_materialization(self, system: str, asset_key: str, *,
                               metadata: dict[str, Any]) -> list[str]:
        """Tell ``system`` that data it knows as ``asset_key`` was made elsewhere (a node's
        `produces:`, mapped in `mappings/datasets.yaml`); returns the jobs of ``system`` the
        report starts (Airflow: the DAGs scheduled on the asset), kept as lineage."""
        raise Rejected(f"`uses: {self.kind}` systems cannot be told about datasets")

    def foreign_actions(self, system: str, *, after_id: int | None,
                        after_time: datetime | None, limit: int) -> list[ForeignAction]:
        """The system's own audit log after entry ``after_id`` (written at ``after_time``),
        oldest first, at most ``limit``; [] when the system keeps none."""
        return []

    def foreign_approvals(self, system: str) -> list[ForeignApproval]:
        """The system's human-in-the-loop requests still waiting for an answer; [] when the
        system has none (Transient when it cannot be reached)."""
        return []

    def foreign_approval(self, system: str, ref: str) -> ForeignApproval | None:
        """One request by ``ref``, answered or not (None once the system forgot it): how a
        request answered in the system's own UI is seen closing."""
        return None

    def answer_approval(self, system: str, ref: str, *, chosen: Sequence[str],
                        params_input: dict[str, Any]) -> ForeignApproval:
        """Answer request ``ref`` with ``chosen`` options as Interlock's service account;
        `Conflict` when it was already answered, `Rejected` when the system refuses."""
        raise Rejected(f"`uses: {self.kind}` systems have no approval requests")

    @classmethod
    def has_approvals(cls) -> bool:
        """Whether `foreign_approvals` is implemented (its systems feed the inbox)."""
        return cls.foreign_approvals is not Adapter.foreign_approvals

    def parse_event(self, payload: dict[str, Any]) -> ForeignEvent:
        """Read a pushed event (already authenticated); Rejected if it is malformed."""
        raise Rejected(f"`uses: {self.kind}` does not accept pushed events")
