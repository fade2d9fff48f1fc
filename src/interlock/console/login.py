"""What the console's login page needs to know, and the page headers that follow from it.

With `INTERLOCK_OIDC_CONSOLE_CLIENT` set (and OIDC configured), the console offers "Log in
with your identity provider": the authorization-code flow with PKCE, run in the browser by
`oauth4webapi` as a public client (no secret exists to leak). The access token it gets is
the same OIDC JWT the API already verifies (`access/oidc.py`), asked for the API's audience
as a resource indicator. The browser talks to the issuer itself (discovery, token
endpoint), so the page's `connect-src` names the issuer's origin, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from interlock.config.env import Settings, settings


@dataclass(frozen=True)
class OidcLogin:
    issuer: str
    client_id: str
    resource: str  # the API's audience, asked for as an RFC 8707 resource indicator
    scopes: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


def oidc_login(conf: Settings | None = None) -> OidcLogin | None:
    """The console's OIDC login, or None when the server offers token login only."""
    conf = conf or settings()
    if not (conf.oidc_console_client and conf.oidc_issuer and conf.oidc_audience):
        return None
    return OidcLogin(issuer=conf.oidc_issuer.rstrip("/"), client_id=conf.oidc_console_client,
                     resource=conf.oidc_audience, scopes=conf.oidc_console_scopes)


def connect_sources() -> tuple[str, ...]:
    """Origins besides 'self' the page may fetch from: the issuer's, when OIDC login is on."""
    login = oidc_login()
    return (login.origin,) if login else ()
