"""Policies: which hold in a namespace (their revisions and rules), checking a policy file's
text, and writing or deleting a policy (a file in the policy folder, audited; allowed on the
namespaces the policy's scope covers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.routes.flows import Validation
from interlock.api.security import Access, requires
from interlock.operations import policies as ops
from interlock.policies.model import NAME
from interlock.spec.namespaces import EVERYWHERE, root

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


class PolicyWrite(BaseModel):
    source: str = Field(description="the policy file's YAML text; its `policy:` is the name "
                        "in the path", max_length=200_000)
    expected_revision: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{16}$",
        description="the revision you read: refused (409) if the policy changed since")


PolicyName = Annotated[str, Path(pattern=NAME, max_length=128)]


def _may_write(access: Access) -> Callable[[str], None]:
    """Writing a policy scoped `bank.*` needs `policies:admin` on `bank`; `*`, everywhere."""
    def check(scope: str) -> None:
        access.check(None if scope == EVERYWHERE else root(scope),
                     what=f"policy scope `{scope}`")
    return check


@router.put("/{name}")
def put_policy(name: PolicyName, body: Annotated[PolicyWrite, Body()],
               access: Annotated[Access, requires(Permission.POLICIES_ADMIN)],
               ) -> dict[str, object]:
    """Create or replace a policy: checked like a policy file (422 with located problems),
    then written into the policy folder; every process applies it from its next decision."""
    return ops.put(name, body.source, actor=access.actor, may_write=_may_write(access),
                   expected=body.expected_revision, origin=access.origin)


@router.delete("/{name}", status_code=204)
def delete_policy(name: PolicyName,
                  access: Annotated[Access, requires(Permission.POLICIES_ADMIN)],
                  expected_revision: Annotated[str | None, Query(pattern=r"^[0-9a-f]{16}$")]
                  = None) -> Response:
    ops.delete(name, actor=access.actor, may_write=_may_write(access),
               expected=expected_revision, origin=access.origin)
    return Response(status_code=204)
