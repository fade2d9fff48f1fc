"""Reading the audit trail: filtered pages (newest first), a JSONL export (oldest first,
with the hashes, so a copy can be verified elsewhere) and the chain's verdict."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Select, select

from interlock.audit import anchors
from interlock.store import audit_seal
from interlock.store import cursor as cursors
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord

EXPORT_BATCH = 5000
log = logging.getLogger(__name__)
LISTING = "audit"


class AuditRecordPublic(BaseModel):
    seq: int = Field(description="position in the chain, from 1, without gaps")
    at: datetime
    actor: str = Field(description="who: `api:<declared name>`, `cli:<user>`, `planner`, "
                                   "`trigger`, a foreign system's name or user, ...")
    action: str = Field(description="what, e.g. run.state, flow.registered, trigger.fired")
    target: str = Field(description="on what, e.g. runs/<id>, flows/<ns>/<id>")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    origin: str = Field(description="from where: a client address, a host:pid, a system")
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: AuditRecord) -> AuditRecordPublic:
        return cls(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                   target=row.target, before=row.before, after=row.after, origin=row.origin,
                   prev_hash=row.prev_hash, hash=row.hash)


class AuditPage(BaseModel):
    records: list[AuditRecordPublic]
    next_cursor: str | None = Field(description="pass as `cursor` to get the next (older) page")


class AuditVerdict(BaseModel):
    ok: bool
    checked: int = Field(description="records whose hash was checked")
    broken_at: int | None = Field(description="sequence number of the first broken link")
    reason: str | None
    archived: int = Field(0, description="records archived before the kept chain, vouched "
                                         "for by signed anchors (`interlock audit archive`)")
    anchors: int = Field(0, description="signed anchors checked")


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target: str | None = None       # exact, or a prefix ending in `/` or `*` (runs/*)
    since: datetime | None = None
    until: datetime | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.actor:
            query = query.where(AuditRecord.actor == self.actor)
        if self.action:
            query = query.where(AuditRecord.action == self.action)
        if self.target:
            prefix = self.target.rstrip("*")
            query = query.where(AuditRecord.target.startswith(prefix, autoescape=True)
                                if self.target.endswith(("*", "/"))
                                else AuditRecord.target == self.target)
        if self.since:
            query = query.where(AuditRecord.at >= self.since)
        if self.until:
            query = query.where(AuditRecord.at < self.until)
        return query


def page(filters: AuditFilter, *, limit: int, cursor: str | None) -> AuditPage:
    query = filters.apply(select(AuditRecord))
    if cursor:
        (seq,) = cursors.decode(LISTING, cursor, int)
        query = query.where(AuditRecord.seq < seq)
    with session_scope() as session:
        rows = session.scalars(query.order_by(AuditRecord.seq.desc()).limit(limit + 1)).all()
        records = [AuditRecordPublic.of(r) for r in rows[:limit]]
    more = len(rows) > limit
    return AuditPage(records=records,
                     next_cursor=cursors.encode(LISTING, records[-1].seq) if more else None)


def export_lines(filters: AuditFilter) -> Iterator[str]:
    """One JSON object per line, oldest first, read in batches (never all in memory).

    An export that fails part-way must never look complete: the last line is then
    `{"error": ..., "complete": false}` and the exception is raised again, so the server
    aborts the transfer (no final chunk) and the client sees a broken download.
    """
    try:
        yield from _export_lines(filters)
    except Exception as exc:
        log.exception("audit export failed part-way")
        yield json.dumps({"error": f"the export failed: {type(exc).__name__}",
                          "complete": False}) + "\n"
        raise


def _export_lines(filters: AuditFilter) -> Iterator[str]:
    last = 0
    while True:
        with session_scope() as session:
            rows = session.scalars(filters.apply(select(AuditRecord))
                                   .where(AuditRecord.seq > last)
                                   .order_by(AuditRecord.seq).limit(EXPORT_BATCH)).all()
            lines = [AuditRecordPublic.of(r).model_dump_json() + "\n" for r in rows]
        yield from lines
        if len(rows) < EXPORT_BATCH:
            return
        last = rows[-1].seq


def verify() -> AuditVerdict:
    """The kept chain, proved from the newest signed anchor (from the genesis when nothing
    was archived); a forged or edited anchor is a broken chain too. Records still pending
    (their transaction's sealer never ran: the process died) are chained first."""
    audit_seal.seal_all()
    with session_scope() as session:
        anchored = anchors.verify(session)
    verdict = anchored.verdict
    return AuditVerdict(ok=verdict.ok, checked=verdict.checked, broken_at=verdict.broken_at,
                        reason=verdict.reason, archived=anchored.archived,
                        anchors=anchored.anchors)
