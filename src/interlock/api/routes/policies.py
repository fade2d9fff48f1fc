"""Policies: which hold in a namespace (their revisions and rules), and checking a policy
file's text before it is put in the policy folder."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.routes.flows import Validation
from interlock.api.security import Access, requires
from interlock.operations import policies as ops

router = APIRouter(prefix="/policies", tags=["policies"], responses=ERROR_RESPONSES)


class PolicySource(BaseModel):
    source: str = Field(description="the policy file's YAML text", max_length=200_000)
    file: str = Field(default="<api>", max_length=200,
                      description="name used in problem locations")


@router.get("")
def policies_in_force(namespace: Annotated[str, Query(max_length=200)],
                      access: Annotated[Access, requires(Permission.FLOWS_READ)],
                      ) -> list[dict[str, object]]:
    """The policies whose scope covers ``namespace``, with their revision and rules."""
    access.check(namespace, what=f"namespace `{namespace}`")
    return ops.in_force(namespace)


@router.post("/validate", response_model=Validation,
             dependencies=[requires(Permission.FLOWS_READ)])
def validate_policy(body: Annotated[PolicySource, Body()]) -> Validation:
    problems = ops.check_source(body.source, body.file)
    return Validation(valid=not problems, problems=[p.__dict__ for p in problems])
