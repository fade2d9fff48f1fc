"""Signed anchors of archived audit segments: where the kept audit chain starts.

`interlock audit archive` writes a prefix of the chain to a file, deletes those records and
leaves one anchor for them, in the same transaction. The anchor holds the segment's bounds,
the hash before it and its last hash, the file's SHA-256, and an HMAC over all of it
(`interlock.audit.anchors`); anchors follow each other without gaps (`first_seq` is unique),
so the kept chain is proved from the newest anchor on.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class AuditAnchor(Base):
    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    first_seq: Mapped[int] = mapped_column(Integer, unique=True)  # first archived record
    last_seq: Mapped[int] = mapped_column(Integer)         # last archived record
    count: Mapped[int] = mapped_column(Integer)            # records archived (last - first + 1)
    prev_hash: Mapped[str] = mapped_column(String(64))     # the hash the segment chains from
    hash: Mapped[str] = mapped_column(String(64))          # the last archived record's hash
    file_sha256: Mapped[str] = mapped_column(String(64))   # of the JSON Lines file written
    file_name: Mapped[str] = mapped_column(String(300))    # its name when written (a hint)
    before: Mapped[datetime]                               # the `--before` cut
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    signature: Mapped[str] = mapped_column(String(80))     # sha256=<HMAC of the fields above>


ANCHORS = cast(Table, AuditAnchor.__table__)
