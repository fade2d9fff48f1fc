"""Flows: register a source (a new revision when it changed), validate, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.errors import SpecError
from interlock.operations import reads
from interlock.operations import runs as ops
from interlock.spec.loader import parse_flow
from interlock.store.views import FlowRevisionPublic

router = APIRouter(prefix="/flows", tags=["flows"], responses=ERROR_RESPONSES)


class FlowSource(BaseModel):
    source: str = Field(description="the flow's YAML text", max_length=1_000_000)
    file: str = Field(default="<api>", description="name used in problem locations")


class Validation(BaseModel):
    valid: bool
    problems: list[dict[str, object]]


@router.post("", status_code=201, response_model=FlowRevisionPublic)
def register_flow(body: Annotated[FlowSource, Body()],
                  access: Annotated[Access, requires(Permission.FLOWS_CREATE)],
                  ) -> FlowRevisionPublic:
    """Register the flow in the namespace its document names (the caller must hold
    `flows:create` there)."""
    _, revision = ops.register(body.source, file=body.file, actor=access.actor,
                               origin=access.origin, guard=access)
    return revision


@router.post("/validate", response_model=Validation,
             dependencies=[requires(Permission.FLOWS_READ)])
def validate_flow(body: Annotated[FlowSource, Body()]) -> Validation:
    try:
        parse_flow(body.source, body.file)
    except SpecError as exc:
        return Validation(valid=False, problems=[p.__dict__ for p in exc.problems])
    return Validation(valid=True, problems=[])


@router.get("", response_model=list[FlowRevisionPublic])
def list_flows(access: Annotated[Access, requires(Permission.FLOWS_READ)],
               ) -> list[FlowRevisionPublic]:
    """The newest revision of each flow in the namespaces the caller may read."""
    return [f for f in reads.list_flows() if access.allows(Permission.FLOWS_READ, f.namespace)]


@router.get("/{namespace}/{flow_id}/revisions", response_model=list[FlowRevisionPublic])
def list_revisions(namespace: str, flow_id: str,
                   access: Annotated[Access, requires(Permission.FLOWS_READ)],
                   ) -> list[FlowRevisionPublic]:
    access.check(namespace, what=f"flow `{namespace}/{flow_id}`")
    return reads.list_revisions(namespace, flow_id)
