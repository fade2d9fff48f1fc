"""Flows: register a source (a new revision when it changed), validate, list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from interlock.api.deps import CallerDep
from interlock.api.errors import ERROR_RESPONSES
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
def register_flow(body: Annotated[FlowSource, Body()], caller: CallerDep) -> FlowRevisionPublic:
    _, revision = ops.register(body.source, file=body.file, actor=caller.actor,
                               origin=caller.origin)
    return revision


@router.post("/validate", response_model=Validation)
def validate_flow(body: Annotated[FlowSource, Body()]) -> Validation:
    try:
        parse_flow(body.source, body.file)
    except SpecError as exc:
        return Validation(valid=False, problems=[p.__dict__ for p in exc.problems])
    return Validation(valid=True, problems=[])


@router.get("", response_model=list[FlowRevisionPublic])
def list_flows() -> list[FlowRevisionPublic]:
    return reads.list_flows()


@router.get("/{namespace}/{flow_id}/revisions", response_model=list[FlowRevisionPublic])
def list_revisions(namespace: str, flow_id: str) -> list[FlowRevisionPublic]:
    return reads.list_revisions(namespace, flow_id)
