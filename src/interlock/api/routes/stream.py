"""Live updates over server-sent events, for the console: the runs list and one run.

Each stream reads the store about once a second on the server and sends an event only
when what it shows changed (the browser never polls). A principal holds at most
`console.sse.PER_PRINCIPAL` streams (429 past that); streams end when the client leaves,
when its credential stops being accepted (revoked, expired), and at shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime

from interlock.access.permissions import Permission
from interlock.access.principals import Unauthenticated
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.console import sse
from interlock.operations import access as access_ops
from interlock.operations import approvals as approval_ops
from interlock.operations import runs as run_ops
from interlock.operations import stream as stream_ops
from interlock.states import ApprovalState, RunState
from interlock.store.approvals import RequestFilter
from interlock.store.runs import RunFilter
from interlock.store.tables import ApprovalOrigin
from interlock.triggers.types import TriggerType

router = APIRouter(prefix="/stream", tags=["stream"], responses=ERROR_RESPONSES)
EVENTS = {"description": "`text/event-stream`: `runs`/`run` events carrying JSON, and a "
                         "last `end` event saying why the stream ended",
          "content": {"text/event-stream": {}}}
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _hub(request: Request) -> sse.StreamHub:
    return request.app.state.streams  # type: ignore[no-any-return]


def _open(request: Request, access: Access, name: str,
          snapshot: Callable[[], Any]) -> StreamingResponse | JSONResponse:
    hub, actor = _hub(request), access.actor
    try:
        release = hub.slot(actor)
    except sse.TooManyStreams as exc:
        return JSONResponse(status_code=429, content={"detail": str(exc)},
                            headers={"Retry-After": "5"})
    header = request.headers.get("authorization")

    async def still_allowed() -> str | None:
        try:
            principal = await run_in_threadpool(access_ops.authenticate, header)
        except Unauthenticated:
            return "the credential is no longer accepted: log in again"
        if principal.actor != actor:
            return "the credential changed hands"
        if principal.bindings != access.principal.bindings:  # a role or namespace taken away
            return "your access changed: open the page again"
        return None

    body = sse.stream(hub, release, name, snapshot, disconnected=request.is_disconnected,
                      still_allowed=still_allowed)
    return _SlotResponse(body, release, media_type="text/event-stream", headers=HEADERS)


class _SlotResponse(StreamingResponse):
    """Frees the stream's slot when the response ends, even if its body never started (a
    client gone before the first byte: the generator's own `finally` would never run)."""

    def __init__(self, body: Any, release: Callable[[], None], **kwargs: Any):
        super().__init__(body, **kwargs)
        self._release = release

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


TOO_MANY = {429: {"description": "the caller holds too many streams"}}


@router.get("/runs", response_model=None, responses={200: EVENTS, **TOO_MANY})
def stream_runs(request: Request, state: RunState | None = None,
                namespace: Annotated[str | None, Query(max_length=200)] = None,
                flow_id: Annotated[str | None, Query(max_length=128)] = None,
                system: Annotated[str | None, Query(max_length=200, description=(
                    "runs with a node on this registered system"))] = None,
                trigger: TriggerType | None = None,
                since: AwareDatetime | None = None, until: AwareDatetime | None = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50, *,
                access: Annotated[Access, requires(Permission.RUNS_READ)],
                ) -> StreamingResponse | JSONResponse:
    """`runs` events: the newest runs matching the filters in the namespaces the caller
    may read (as `GET /runs` lists them), sent at once and again whenever one changes.
    `since`/`until` bound `created_at` (with a zone); `trigger` is the trigger type."""
    if since is not None and until is not None and until < since:
        raise ValueError("`until` is before `since`")
    filters = RunFilter(state=state, namespace=namespace, flow_id=flow_id, system=system,
                        created_after=since, created_before=until,
                        namespaces=access.patterns())
    return _open(request, access, "runs",
                 lambda: stream_ops.runs(filters=filters, trigger=trigger, limit=limit))


@router.get("/runs/{run_id}", response_model=None,
            responses={200: EVENTS, **TOO_MANY})
async def stream_run(request: Request, run_id: Annotated[str, Path(max_length=100)], *,
                     access: Annotated[Access, requires(Permission.RUNS_READ)],
                     ) -> StreamingResponse | JSONResponse:
    """`run` events: `{run, trace}` as `GET /runs/{id}` and `GET /runs/{id}/trace` show
    them, sent at once and again whenever the run changes. 404 before the stream starts
    for a run the caller cannot see."""
    await run_in_threadpool(run_ops.get_run, run_id, guard=access)  # 404/403 up front
    return _open(request, access, "run", lambda: stream_ops.run(run_id, guard=access))


@router.get("/approvals", response_model=None, responses={200: EVENTS, **TOO_MANY})
def stream_approvals(request: Request, state: ApprovalState | None = None,
                     namespace: Annotated[str | None, Query(max_length=200)] = None,
                     flow: Annotated[str | None, Query(max_length=330)] = None,
                     origin: ApprovalOrigin | None = None,
                     mine: Annotated[bool, Query(description=(
                         "only pending requests the caller could still vote on"))] = False,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50, *,
                     access: Annotated[Access, requires(Permission.APPROVALS_READ)],
                     ) -> StreamingResponse | JSONResponse:
    """`approvals` events: `{approvals: [...]}`, the inbox as `GET /approvals` lists it with
    the same filters, sent at once and again whenever a request in it changes."""
    states = (ApprovalState.PENDING,) if mine and state is None else \
        ((state,) if state else ())
    filters = RequestFilter(states=states, namespace=namespace, flow=flow, origin=origin,
                            namespaces=access.patterns())
    principal = access.principal if mine else None
    return _open(request, access, "approvals", lambda: {"approvals": jsonable_encoder(
        approval_ops.list_requests(filters=filters, limit=limit, mine=principal))})
