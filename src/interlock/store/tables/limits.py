"""Concurrency scopes: one row per limited scope (a flow, a namespace, a system), locked by
whoever admits work into it or frees a slot of it, so that several workers and API replicas
never count the same free slot twice (`interlock.limits`)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class ConcurrencyScope(Base):
    __tablename__ = "concurrency_scopes"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)  # e.g. system:airflow/prod
    bumps: Mapped[int] = mapped_column(Integer, default=0)  # written to take the row lock
