"""Runs: start, inspect, list, cancel, retry, logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.deps import DispatcherDep, aware
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.operations import agents as agent_ops
from interlock.operations import runs as ops
from interlock.states import RunState
from interlock.store.runs import RunFilter
from interlock.store.views import EventPublic, LogPublic, RunDetail, RunPage
from interlock.triggers.types import TriggerType

router = APIRouter(prefix="/runs", tags=["runs"], responses=ERROR_RESPONSES)


class RunCreate(BaseModel):
    namespace: str = Field(default="default", max_length=200)
    flow_id: str = Field(max_length=128)
    revision: int | None = Field(default=None, ge=1, le=2**31 - 1,
                                 description="default: the newest")
    inputs: dict[str, Any] = Field(default_factory=dict)
    inputs_are_strings: bool = Field(default=False, description=(
        "the inputs are command-line strings (`n=3`): each is parsed to its declared type"))


class Accepted(BaseModel):
    id: str
    detail: str
    nodes: list[str] = Field(default_factory=list)


@router.post("", status_code=201, response_model=RunDetail,
             responses={200: {"model": RunDetail, "description": (
                 "a repeated Idempotency-Key (same caller, flow and inputs): the run it "
                 "started, nothing new")}})
def start_run(body: RunCreate, dispatcher: DispatcherDep, response: Response,
              access: Annotated[Access, requires(Permission.RUNS_EXECUTE)],
              idempotency_key: Annotated[str | None, Header(
                  min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
                  description="retry safely: the same key returns the same run")] = None,
              ) -> RunDetail:
    """Start a run. It is committed before it is handed to a worker: with the broker down
    the answer is still 201 (the outbox hands it over later); a client that retries with
    the same `Idempotency-Key` gets the same run (200), never a second one."""
    run_id, created = ops.start_once(
        namespace=body.namespace, flow_id=body.flow_id, inputs=body.inputs,
        revision=body.revision, dispatcher=dispatcher, actor=access.actor,
        inputs_are_strings=body.inputs_are_strings, origin=access.origin,
        trigger={"type": TriggerType.API, "by": access.actor}, guard=access,
        idempotency_key=idempotency_key)
    if not created:
        response.status_code = 200
    return ops.get_run(run_id, guard=access.with_permission(Permission.RUNS_READ))


@router.get("", response_model=RunPage)
def list_runs(state: RunState | None = None,
              namespace: Annotated[str | None, Query(max_length=200)] = None,
              flow_id: Annotated[str | None, Query(max_length=128)] = None,
              system: Annotated[str | None, Query(max_length=200, description=(
                  "runs with a node on this registered system, e.g. airflow/prod"))] = None,
              created_after: datetime | None = None, created_before: datetime | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 50,
              cursor: Annotated[str | None, Query(max_length=500)] = None, *,
              access: Annotated[Access, requires(Permission.RUNS_READ)]) -> RunPage:
    """Runs of the namespaces the caller may read, newest first."""
    filters = RunFilter(state=state, namespace=namespace, flow_id=flow_id, system=system,
                        created_after=aware(created_after), created_before=aware(created_before),
                        namespaces=access.patterns())
    return ops.list_runs(filters=filters, limit=limit, cursor=cursor)


@router.get("/{run_id}", response_model=RunDetail)
def get_run(run_id: str, access: Annotated[Access, requires(Permission.RUNS_READ)]) -> RunDetail:
    return ops.get_run(run_id, guard=access)


@router.get("/{run_id}/events", response_model=list[EventPublic])
def run_events(run_id: str, access: Annotated[Access, requires(Permission.RUNS_READ)],
               ) -> list[EventPublic]:
    return ops.run_events(run_id, guard=access)


@router.post("/{run_id}/cancel", status_code=202, response_model=Accepted)
def cancel_run(run_id: str, dispatcher: DispatcherDep,
               access: Annotated[Access, requires(Permission.RUNS_CANCEL)]) -> Accepted:
    ops.cancel_run(run_id, dispatcher=dispatcher, actor=access.actor, origin=access.origin,
                   guard=access)
    return Accepted(id=run_id, detail="cancel requested")


@router.post("/{run_id}/retry", status_code=202, response_model=Accepted)
def retry_run(run_id: str, dispatcher: DispatcherDep,
              access: Annotated[Access, requires(Permission.RUNS_RETRY)]) -> Accepted:
    reopened = ops.retry_run(run_id, dispatcher=dispatcher, actor=access.actor,
                             origin=access.origin, guard=access)
    return Accepted(id=run_id, detail="retry started", nodes=reopened)


@router.get("/{run_id}/nodes/{node_id}/logs", response_model=LogPublic)
def node_logs(run_id: str, node_id: str, attempt: Annotated[int | None, Query(ge=1)] = None,
              cursor: Annotated[str | None, Query(max_length=40)] = None, *,
              access: Annotated[Access, requires(Permission.LOGS_READ)]) -> LogPublic:
    return ops.node_logs(run_id, node_id, attempt=attempt, cursor=cursor, guard=access)


@router.get("/{run_id}/nodes/{node_id}/agent", response_model=agent_ops.AgentTrail)
def node_agent(run_id: str, node_id: str,
               access: Annotated[Access, requires(Permission.RUNS_READ)]) -> agent_ops.AgentTrail:
    """An agent node's steps (`docs/agents.md`): model requests and tool calls, with
    their policy decisions and usage; arguments, results and content need outputs:read."""
    return agent_ops.agent_trail(run_id, node_id, guard=access)
