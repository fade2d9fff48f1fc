"""Events pushed by foreign systems: the Airflow listener, the Dagster sensor, the cron wrapper.

The request must be signed with the system's `events_secret` (see `interlock.adapters.signing`);
anything else is answered 401 and recorded in the audit trail, and so is a push the request
limits refused before it was read (`audit_refused`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import Scope

from interlock.api.deps import DispatcherDep, request_origin
from interlock.api.errors import ERROR_RESPONSES, ErrorBody
from interlock.api.limits import OnRefused
from interlock.api.security import public
from interlock.events import intake

router = APIRouter(prefix="/events", tags=["events"], responses={
    **ERROR_RESPONSES, 401: {"model": ErrorBody, "description": "bad or missing signature"}})


class EventAccepted(BaseModel):
    attempt_id: int | None = Field(description="our attempt it concerns, polled at once")
    external_run_id: int | None = Field(description="the external run it recorded")
    triggered_runs: list[str] = Field(description="runs started by `after:` triggers")


@router.post("/{kind}", status_code=202, response_model=EventAccepted,
             dependencies=[public("HMAC-signed with the system's events secret")],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {"type": "object"}}}}})
async def push_event(kind: str, request: Request, dispatcher: DispatcherDep,
                     ) -> EventAccepted | JSONResponse:
    body = await request.body()
    origin = request_origin(request)
    try:
        # The store and dispatch calls block: keep them off the event loop.
        outcome = await run_in_threadpool(intake.receive, kind, body, request.headers,
                                          dispatcher=dispatcher, origin=origin)
    except intake.Refused:
        return JSONResponse(status_code=401, content={"detail": intake.REFUSED})
    except intake.Malformed as exc:
        return JSONResponse(status_code=422, content={"detail": str(exc)})
    return EventAccepted(attempt_id=outcome.attempt_id,
                         external_run_id=outcome.external_run_id,
                         triggered_runs=[f.run_id for f in outcome.fired])


def audit_refused(prefix: str) -> OnRefused:
    """A listener for the request limits: a push to `<prefix>/{kind}` they refused (too
    large, too deep...) is audited as `event.refused`, sender unknown, with its size."""
    async def audit(scope: Scope, status: int, detail: str, size: int | None) -> None:
        kind = str(scope.get("path", "")).removeprefix(prefix + "/")
        if scope.get("method") != "POST" or kind == scope.get("path") or not kind \
                or "/" in kind:
            return
        origin = request_origin(Request(scope))
        await run_in_threadpool(intake.refuse_unread, kind, f"{status}: {detail}", origin,
                                size=size)
    return audit
