"""The audit trail: who did what, to what, when and from where; hash-chained."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from interlock.access.permissions import Permission
from interlock.api.deps import aware
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import requires
from interlock.audit import query as audit_query
from interlock.audit.query import AuditFilter, AuditPage, AuditVerdict

router = APIRouter(prefix="/audit", tags=["audit"], responses=ERROR_RESPONSES)
JSONL = "application/x-ndjson"


def _filters(actor: str | None, action: str | None, target: str | None,
             since: datetime | None, until: datetime | None) -> AuditFilter:
    return AuditFilter(actor=actor, action=action, target=target, since=aware(since),
                       until=aware(until))


ActorQ = Annotated[str | None, Query(max_length=200)]
ActionQ = Annotated[str | None, Query(max_length=64, description="e.g. run.state")]
TargetQ = Annotated[str | None, Query(max_length=300, description=(
    "exact, or a prefix ending in `/` or `*`, e.g. runs/* or flows/sales/"))]


@router.get("", dependencies=[requires(Permission.AUDIT_READ)],
            response_model=AuditPage)
def list_records(actor: ActorQ = None, action: ActionQ = None, target: TargetQ = None,
                 since: datetime | None = None, until: datetime | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 cursor: Annotated[str | None, Query(max_length=200)] = None) -> AuditPage:
    """Records, newest first, filtered; `next_cursor` pages on to older ones."""
    return audit_query.page(_filters(actor, action, target, since, until), limit=limit,
                            cursor=cursor)


@router.get("/export", dependencies=[requires(Permission.AUDIT_READ)],
            response_class=StreamingResponse, responses={
    200: {"content": {JSONL: {}}, "description": "one record per line, oldest first"}})
def export(actor: ActorQ = None, action: ActionQ = None, target: TargetQ = None,
           since: datetime | None = None, until: datetime | None = None) -> StreamingResponse:
    """JSON Lines, with each record's `prev_hash` and `hash`: an unfiltered export can be
    verified offline by recomputing the chain."""
    lines = audit_query.export_lines(_filters(actor, action, target, since, until))
    return StreamingResponse(lines, media_type=JSONL, headers={
        "Content-Disposition": 'attachment; filename="interlock-audit.jsonl"'})


@router.get("/verify", dependencies=[requires(Permission.AUDIT_READ)],
            response_model=AuditVerdict)
def verify() -> AuditVerdict:
    """Recompute the whole chain; the first broken link, if any."""
    return audit_query.verify()
