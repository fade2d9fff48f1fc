"""Public shapes of runs, nodes and attempts: what the API returns and `--json` prints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from interlock.states import NodeState, RunState
from interlock.store.runs import Loaded
from interlock.store.tables import Attempt, Deadline, FlowRevision, Run, StateEvent


class HandlePublic(BaseModel):
    kind: str
    external_id: str
    system: str | None = None
    url: str | None = None


class AttemptPublic(BaseModel):
    number: int
    key: str = Field(description="idempotency key: the same key never starts a second job")
    state: NodeState
    handle: HandlePublic | None
    remote_status: str | None
    outputs: dict[str, Any]
    error: str | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, a: Attempt) -> AttemptPublic:
        handle = HandlePublic.model_validate(
            {k: a.handle.get(k) for k in HandlePublic.model_fields}) if a.handle else None
        return cls(number=a.number, key=a.key, state=NodeState(a.state), handle=handle,
                   remote_status=a.remote_status, outputs=a.outputs, error=a.error,
                   created_at=a.created_at, submitted_at=a.submitted_at,
                   finished_at=a.finished_at)


class NodePublic(BaseModel):
    id: str
    uses: str
    state: NodeState
    reason: str | None
    error: str | None
    outputs: dict[str, Any]
    retry_at: datetime | None
    attempts: list[AttemptPublic]


class DeadlinePublic(BaseModel):
    """A run's (node None) or a node's `sla:` deadline and its flags (docs/deadlines.md)."""

    node: str | None
    due_at: datetime | None
    state: str = Field(description="watching | met | late | void")
    at_risk: bool
    estimate_at: datetime | None
    cause: str | None = Field(description="the node that made it at risk")

    @classmethod
    def of(cls, d: Deadline) -> DeadlinePublic:
        return cls(node=d.node_id or None, due_at=d.due_at, state=d.state,
                   at_risk=d.at_risk_at is not None, estimate_at=d.estimate_at,
                   cause=d.cause_node)


class RunSummary(BaseModel):
    id: str
    namespace: str
    flow_id: str
    revision: int
    state: RunState
    reason: str | None
    trace_id: str
    trigger: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, r: Run) -> RunSummary:
        return cls(id=r.id, namespace=r.namespace, flow_id=r.flow_id, revision=r.revision,
                   state=RunState(r.state), reason=r.reason, trace_id=r.trace_id,
                   trigger=r.trigger, created_at=r.created_at, finished_at=r.finished_at)


class RunDetail(RunSummary):
    inputs: dict[str, Any]
    nodes: list[NodePublic]
    outputs_hidden: bool = Field(default=False, description="nodes' outputs left out: the "
                                 "caller lacks `outputs:read` in the run's namespace")
    deadlines: list[DeadlinePublic] = Field(default_factory=list, description=(
        "its `sla:` deadlines: LATE, at risk (empty when the flow has none)"))

    def without_outputs(self) -> RunDetail:
        nodes = [n.model_copy(update={"outputs": {}, "attempts": [
            a.model_copy(update={"outputs": {}}) for a in n.attempts]}) for n in self.nodes]
        return self.model_copy(update={"nodes": nodes, "outputs_hidden": True})

    @classmethod
    def of_loaded(cls, loaded: Loaded, deadlines: Sequence[Deadline] = ()) -> RunDetail:
        nodes = [NodePublic(id=nid, uses=n.uses, state=NodeState(n.state), reason=n.reason,
                            error=n.error, outputs=n.outputs, retry_at=n.retry_at,
                            attempts=[AttemptPublic.of(a) for a in loaded.attempts.get(nid, [])])
                 for nid in loaded.graph.order for n in [loaded.nodes[nid]]]
        return cls(**RunSummary.of(loaded.run).model_dump(), inputs=loaded.run.inputs, nodes=nodes,
                   deadlines=[DeadlinePublic.of(d) for d in deadlines])


class RunPage(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next page")


class EventPublic(BaseModel):
    entity: str
    node_id: str | None
    attempt: int | None
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, e: StateEvent) -> EventPublic:
        return cls(entity=e.entity, node_id=e.node_id, attempt=e.attempt,
                   from_state=e.from_state, to_state=e.to_state, actor=e.actor,
                   reason=e.reason, at=e.at)


class FlowRevisionPublic(BaseModel):
    namespace: str
    id: str
    revision: int
    digest: str
    created_at: datetime
    nodes: list[str]

    @classmethod
    def of(cls, r: FlowRevision) -> FlowRevisionPublic:
        return cls(namespace=r.namespace, id=r.flow_id, revision=r.revision, digest=r.digest,
                   created_at=r.created_at, nodes=list(r.spec.get("nodes", {})))


class LogPublic(BaseModel):
    run_id: str
    node_id: str
    attempt: int
    text: str
    cursor: str | None
    truncated: bool
