"""API tokens: stored only as a hash, with a visible prefix, expiry, last use and revocation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))          # access.principals.PrincipalKind
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in lists and logs
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the whole token
    role: Mapped[str] = mapped_column(String(32))           # access.permissions.Role
    namespace: Mapped[str] = mapped_column(String(200))     # a namespace pattern
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)  # approval rules' `group:`
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
