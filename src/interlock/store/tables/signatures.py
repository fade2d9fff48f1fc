"""Signatures of pushed events already accepted, kept for the signing tolerance window so a
captured (timestamp, signature) pair cannot be replayed, on any API replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class SeenSignature(Base):
    __tablename__ = "seen_signatures"
    __table_args__ = (Index("ix_seen_signatures_at", "seen_at"),)

    signature: Mapped[str] = mapped_column(String(80), primary_key=True)  # sha256=<64 hex>
    seen_at: Mapped[datetime]
