"""Outbound notifications owed to webhooks (`interlock.notify`): one row per delivery.

A row is written in the transaction of the change it tells about (an approval requested,
reminded, escalated, decided) and sent later by the reconciler's `NotificationSender`, so a
slow or dead receiver never holds a run up. It names its webhook, never the webhook's URL or
secret: both are read from the notify file when the row is sent. A delivered row is
deleted; one that failed `max_tries` times stays, `given_up`, for a person to look at.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base

WEBHOOK_MAX = 100   # a webhook's name in the notify file
ERROR_MAX = 300     # what the last failed try said (our words, never the receiver's body)


class NotificationState(StrEnum):
    PENDING = "pending"      # owed: due at `next_at` (while a sender holds it, its lease end)
    GIVEN_UP = "given_up"    # every try failed; logged and audited, never sent again


class Notification(Base):
    __tablename__ = "notifications"
    # The sender's one query: pending rows whose time has come, oldest first.
    __table_args__ = (Index("ix_notifications_due", "state", "next_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook: Mapped[str] = mapped_column(String(WEBHOOK_MAX))
    event: Mapped[str] = mapped_column(String(32))          # notify.NotifyEvent
    namespace: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]]                          # bounded (store.facts)
    state: Mapped[str] = mapped_column(String(16))           # NotificationState
    tries: Mapped[int] = mapped_column(Integer)              # deliveries begun so far
    next_at: Mapped[datetime]                                # due, or the claim's lease end
    last_error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    created_at: Mapped[datetime]                             # the event's time (`at`)


NOTIFICATIONS = cast(Table, Notification.__table__)
