"""API tokens for users and service accounts: made here, shown once, kept only as a hash.

A token reads `ilk_<prefix>_<secret>`: the prefix (8 characters) is stored in clear so
lists and logs can name a token without holding it; the store keeps only the SHA-256 of the
whole token (tokens carry 256 bits of randomness, so a fast hash is enough, as for GitHub's).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.access.permissions import Role
from interlock.access.principals import (
    Binding,
    Principal,
    PrincipalKind,
    Unauthenticated,
)
from interlock.errors import Conflict, InterlockError, NotFound
from interlock.spec.namespaces import check_pattern
from interlock.store.tables import ApiToken

SCHEME = "ilk"
_TOKEN = re.compile(r"^ilk_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
_GROUP = _NAME
LAST_USE_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often


class TokenError(InterlockError):
    pass


class TokenInfo(BaseModel):
    """A token as lists and the API show it: its prefix, never the secret."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: PrincipalKind
    prefix: str
    role: Role
    namespace: str
    groups: tuple[str, ...] = ()
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    prefix = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"


def create(session: Session, *, name: str, role: Role, namespace: str, created_by: str,
           kind: PrincipalKind = PrincipalKind.USER, expires_in: timedelta | None = None,
           token: str | None = None, groups: tuple[str, ...] = ()) -> tuple[str, TokenInfo]:
    """A new token; returns it (the only time it is seen) and what lists show. ``token``
    provisions a value made elsewhere (it must have our shape)."""
    if not _NAME.match(name):
        raise TokenError(f"token name {name!r}: use 1-100 letters, digits, `_.@-`")
    check_pattern(namespace)
    if bad := [g for g in groups if not _GROUP.match(g)]:
        raise TokenError(f"group names {bad}: use 1-100 letters, digits, `_.@-`")
    token = token or mint()
    if not (shape := _TOKEN.match(token)):
        raise TokenError("a provisioned token must read ilk_<8 letters or digits>_<43 chars>")
    now = clock.now()
    row = ApiToken(name=name, kind=kind.value, prefix=shape.group(1), digest=digest(token),
                   role=role.value, namespace=namespace, groups=list(groups),
                   created_by=created_by[:200],
                   created_at=now, expires_at=now + expires_in if expires_in else None)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a token named {name!r} exists; revoke it or choose another name") \
            from None
    return token, _info(row)


def authenticate(session: Session, token: str) -> tuple[Principal, datetime | None]:
    """The principal a presented token stands for, and when the token expires; refuses
    unknown, expired and revoked tokens."""
    if not _TOKEN.match(token):
        raise Unauthenticated("not an Interlock token")
    row = session.scalars(select(ApiToken).where(ApiToken.digest == digest(token))).first()
    now = clock.now()
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("unknown or revoked token")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated(f"token {row.prefix} expired")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USE_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return principal_of(row), row.expires_at


def principal_of(row: ApiToken) -> Principal:
    return Principal(name=row.name, kind=PrincipalKind(row.kind),
                     bindings=(Binding(Role(row.role), row.namespace),),
                     groups=tuple(row.groups or ()))


def current(session: Session, name: str) -> Principal | None:
    """The principal of token ``name`` as it stands now (None once revoked or expired):
    how a vote is checked again before the approved work is submitted."""
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= clock.now():
        return None
    return principal_of(row)


def revoke(session: Session, name: str) -> TokenInfo:
    row = session.scalars(select(ApiToken).where(ApiToken.name == name)).first()
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
    return _info(row)


def list_tokens(session: Session) -> list[TokenInfo]:
    return [_info(r) for r in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(name=row.name, kind=PrincipalKind(row.kind), prefix=row.prefix,
                     role=Role(row.role), namespace=row.namespace,
                     groups=tuple(row.groups or ()), created_by=row.created_by,
                     created_at=row.created_at, expires_at=row.expires_at,
                     last_used_at=row.last_used_at, revoked_at=row.revoked_at)
