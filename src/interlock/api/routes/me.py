"""`GET /me`: who the caller is and what it may do where, so the console shows only the
pages and buttons the caller may use (the API still refuses anything else)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires

router = APIRouter(tags=["access"], responses=ERROR_RESPONSES)


class RoleBinding(BaseModel):
    role: str
    namespace: str = Field(description="a pattern: `*`, `a.b` or `a.b.*`")


class Me(BaseModel):
    actor: str = Field(description="as the audit trail names the caller: `user:alice`")
    kind: str
    name: str
    groups: list[str]
    roles: list[RoleBinding]
    permissions: dict[str, list[str]] = Field(description=(
        "each permission the caller holds somewhere -> the namespace patterns where it "
        "holds (`*`: everywhere; global permissions hold only with `*`)"))


@router.get("/me", response_model=Me)
def me(access: Annotated[Access, requires(Permission.RUNS_READ)]) -> Me:
    """The caller's principal, roles and permissions. Declared `runs:read`: the console
    starts from the runs, so whoever may read runs somewhere may open it."""
    principal = access.principal
    held = {p.value: patterns for p in Permission
            if (patterns := sorted(set(principal.patterns_for(p))))}
    return Me(actor=principal.actor, kind=principal.kind.value, name=principal.name,
              groups=list(principal.groups), permissions=held,
              roles=[RoleBinding(role=b.role.value, namespace=b.pattern)
                     for b in principal.bindings])
