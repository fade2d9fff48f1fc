"""Who is calling, and API tokens: what the API's security dependency and the CLI call."""

from __future__ import annotations

import getpass
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from interlock import clock
from interlock.access import oidc, tokens
from interlock.access.bindings import load_bindings
from interlock.access.permissions import Role
from interlock.access.principals import (
    DEVELOPER,
    Binding,
    Forbidden,
    Principal,
    PrincipalKind,
    Unauthenticated,
)
from interlock.config.env import settings
from interlock.spec.namespaces import EVERYWHERE
from interlock.store import audit
from interlock.store.db import session_scope

log = logging.getLogger(__name__)
BEARER = "bearer"
MAX_CREDENTIAL = 8192  # bytes of an Authorization header we look at
MAX_GROUPS = 20        # groups of one token: what approval rules' `group:` count


def local_principal() -> Principal:
    """The CLI on the store's own machine: whoever can open the store already holds it."""
    return Principal(name=getpass.getuser(), kind=PrincipalKind.LOCAL,
                     bindings=(Binding(Role.ADMIN, EVERYWHERE),))


def _bearer(authorization: str | None) -> str | None:
    """The credential of a well-formed, bounded `Bearer` header; None for anything else."""
    if not authorization or len(authorization) > MAX_CREDENTIAL:
        return None
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == BEARER and credential else None


def authenticate(authorization: str | None) -> Principal:
    """The principal behind an `Authorization` header; Unauthenticated if none is accepted."""
    if not settings().auth:
        return DEVELOPER
    credential = _bearer(authorization)
    if credential is None:
        raise Unauthenticated("no bearer credential")
    if credential.startswith(tokens.SCHEME + "_"):
        return _token_principal(credential)
    return _oidc_principal(credential)


# Tokens seen in the last few seconds, so a busy client costs no store read per request.
# A revocation through this process drops its entry at once; other replicas see it within
# TOKEN_CACHE_S, and an expiry is honoured to the second (the entry never outlives it).
TOKEN_CACHE_S = 5.0
TOKEN_CACHE_MAX = 10_000
_token_cache: dict[str, tuple[Principal, float]] = {}
_token_cache_lock = threading.Lock()


def cached_principal(authorization: str | None) -> Principal | None:
    """The principal of a token seen moments ago (no I/O), else None; the developer when
    authentication is off."""
    if not settings().auth:
        return DEVELOPER
    credential = _bearer(authorization)  # the same door as `authenticate`, minus the I/O
    if credential is None:
        return None
    with _token_cache_lock:
        hit = _token_cache.get(tokens.digest(credential))
    return hit[0] if hit is not None and hit[1] > time.monotonic() else None


def _token_principal(credential: str) -> Principal:
    with session_scope() as session:
        principal, expires_at = tokens.authenticate(session, credential)
    ttl = TOKEN_CACHE_S
    if expires_at is not None:
        ttl = min(ttl, (expires_at - clock.now()).total_seconds())
    with _token_cache_lock:
        if len(_token_cache) >= TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[tokens.digest(credential)] = (principal, time.monotonic() + ttl)
    return principal


def forget_token(name: str) -> None:
    with _token_cache_lock:
        for key in [k for k, (p, _) in _token_cache.items() if p.name == name]:
            del _token_cache[key]


_verifiers: dict[oidc.OidcConfig, oidc.OidcVerifier] = {}
_verifiers_lock = threading.Lock()


def _verifier() -> oidc.OidcVerifier | None:
    """One verifier (and JWKS cache) per configuration, for the whole process."""
    config = oidc.oidc_config(settings())
    if config is None:
        return None
    with _verifiers_lock:
        if config not in _verifiers:
            _verifiers[config] = oidc.OidcVerifier(config)
        return _verifiers[config]


def _oidc_principal(credential: str) -> Principal:
    verifier = _verifier()
    if verifier is None:
        raise Unauthenticated("no OIDC issuer is configured")
    try:
        identity = verifier.verify(credential)
    except oidc.InvalidToken as exc:
        raise Unauthenticated(str(exc)) from None
    bindings = load_bindings(settings().oidc_bindings_file).for_identity(
        identity.subject, identity.groups)
    return Principal(name=identity.subject, kind=PrincipalKind.OIDC, bindings=bindings,
                     groups=identity.groups)


def create_token(*, name: str, role: Role, namespace: str, expires_in: timedelta | None,
                 kind: PrincipalKind, by: Principal, origin: str,
                 groups: Sequence[str] = ()) -> tuple[str, tokens.TokenInfo]:
    """A new token; ``groups`` are what approval rules with `group:` count it in."""
    unique = tuple(dict.fromkeys(groups))  # a group named twice is one group
    if len(unique) > MAX_GROUPS:
        raise tokens.TokenError(f"{len(unique)} groups: a token holds at most {MAX_GROUPS}")
    with session_scope() as session:
        token, info = tokens.create(session, name=name, role=role, namespace=namespace,
                                    created_by=by.actor, kind=kind, expires_in=expires_in,
                                    groups=unique)
        audit.record(session, actor=by.actor, action=audit.Action.TOKEN_CREATED,
                     target=f"tokens/{name}", origin=origin,
                     after={"prefix": info.prefix, "role": role.value, "namespace": namespace,
                            "kind": kind.value, "groups": list(unique),
                            "expires_at": info.expires_at.isoformat() if info.expires_at
                            else None})
    return token, info


def revoke_token(name: str, *, by: Principal, origin: str) -> tokens.TokenInfo:
    with session_scope() as session:
        info = tokens.revoke(session, name)
        audit.record(session, actor=by.actor, action=audit.Action.TOKEN_REVOKED,
                     target=f"tokens/{name}", origin=origin, after={"prefix": info.prefix})
    forget_token(name)  # after the commit: a request in between re-reads and caches it revoked
    return info


def list_tokens() -> list[tokens.TokenInfo]:
    with session_scope() as session:
        return tokens.list_tokens(session)


class BootstrapError(Exception):
    pass


def bootstrap_admin(path: Path, *, name: str = "admin") -> tokens.TokenInfo:
    """Make the first admin token and write it to ``path``, readable by its owner only
    (created with mode 0600, never overwritten); the token is never printed or logged."""
    me = local_principal()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BootstrapError(f"{path} exists: remove it first, or use the token it holds") \
            from None
    try:
        token, info = create_token(name=name, role=Role.ADMIN, namespace=EVERYWHERE,
                                   expires_in=None, kind=PrincipalKind.USER, by=me,
                                   origin=audit.LOCAL_ORIGIN)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return info


def record_denial(denied: Forbidden, *, target: str, origin: str) -> None:
    """An authenticated caller refused: who, which permission, where (audited)."""
    with session_scope() as session:
        audit.record(session, actor=denied.actor or "unknown", action=audit.Action.ACCESS_DENIED,
                     target=target[:300], origin=origin,
                     after={"permission": denied.permission, "namespace": denied.namespace})
