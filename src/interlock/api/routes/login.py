"""`GET /login/options`: how the console's login page may log a person in. Public: a page
that has no credential yet must learn where to get one; it holds no secret (the console is
a public OIDC client, its PKCE verifier never leaves the browser)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import public
from interlock.console.login import oidc_login

router = APIRouter(tags=["access"], responses=ERROR_RESPONSES)


class OidcOptions(BaseModel):
    issuer: str = Field(description="the OpenID issuer; its discovery document gives the rest")
    client_id: str = Field(description="the console's public client (authorization code + PKCE)")
    resource: str = Field(description="the API's audience, asked for as a resource indicator")
    scopes: str


class LoginOptions(BaseModel):
    token: bool = Field(description="an Interlock API token is always accepted")
    oidc: OidcOptions | None = Field(description="null: no identity-provider login here")


@router.get("/login/options", response_model=LoginOptions, dependencies=[public(
    "a login page has no credential yet; the answer holds no secret")])
def login_options() -> LoginOptions:
    """Token login, and OIDC login when `INTERLOCK_OIDC_CONSOLE_CLIENT` is set."""
    login = oidc_login()
    return LoginOptions(token=True, oidc=None if login is None else OidcOptions(
        issuer=login.issuer, client_id=login.client_id, resource=login.resource,
        scopes=login.scopes))
