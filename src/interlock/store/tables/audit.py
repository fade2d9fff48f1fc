"""The append-only, hash-chained audit trail, its head, and records waiting to be chained.

A record joins the chain (`audit_log`) under the head's lock (`audit_head`). A transaction
that finds the head held by another writes its records to `audit_pending` instead, in its
own transaction, and they are chained right after it commits (`interlock.store.audit_seal`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class AuditRecord(Base):
    """Append-only audit trail; each record's hash covers the one before it."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(300), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(200))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link, one row: locking it orders whatever joins the chain."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AuditPending(Base):
    """A committed record not chained yet: no seq, no hash. Written in the transaction of
    the change it describes when the head was held by another; chained in `id` order (the
    order pending records are found) by the next sealer, then deleted."""

    __tablename__ = "audit_pending"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    origin: Mapped[str] = mapped_column(String(200))
