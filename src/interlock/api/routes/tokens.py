"""API tokens: create (the token is in the answer once, never again), list, revoke."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission, Role
from interlock.access.principals import PrincipalKind
from interlock.access.tokens import TokenError, TokenInfo
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.config.durations import MAX_SECONDS
from interlock.operations import access as access_ops

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=ERROR_RESPONSES)
MAX_GROUP = 100  # characters of a group name (as the token store allows)


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    namespace: str = Field(max_length=200, description="a pattern: `*`, `a.b` or `a.b.*`")
    expires_in_s: float | None = Field(default=None, gt=0, le=MAX_SECONDS,
                                       description="seconds until it expires; none: never")
    service: bool = Field(default=False, description="a service account's, not a person's")
    groups: list[Annotated[str, Field(min_length=1, max_length=MAX_GROUP)]] = Field(
        default_factory=list, max_length=access_ops.MAX_GROUPS,
        description="what approval rules with `group:` count the token holder in")


class TokenCreated(TokenInfo):
    token: str = Field(description="the token itself: shown in this answer only")


@router.post("", status_code=201, response_model=TokenCreated)
def create_token(body: TokenCreate,
                 access: Annotated[Access, requires(Permission.TOKENS_ADMIN)]) -> TokenCreated:
    kind = PrincipalKind.SERVICE if body.service else PrincipalKind.USER
    expires = timedelta(seconds=body.expires_in_s) if body.expires_in_s else None
    try:
        token, info = access_ops.create_token(
            name=body.name, role=body.role, namespace=body.namespace, expires_in=expires,
            kind=kind, by=access.principal, origin=access.origin, groups=body.groups)
    except TokenError as exc:  # a bad name: the request's fault
        raise ValueError(str(exc)) from None
    return TokenCreated(**info.model_dump(), token=token)


@router.get("", response_model=list[TokenInfo])
def list_tokens(_: Annotated[Access, requires(Permission.TOKENS_ADMIN)]) -> list[TokenInfo]:
    """Every token, revoked and expired ones too; never a token's secret."""
    return access_ops.list_tokens()


@router.post("/{name}/revoke", response_model=TokenInfo)
def revoke_token(name: Annotated[str, Path(max_length=100)],
                 access: Annotated[Access, requires(Permission.TOKENS_ADMIN)]) -> TokenInfo:
    """Revoke a token at once (revoking it again changes nothing)."""
    return access_ops.revoke_token(name, by=access.principal, origin=access.origin)
