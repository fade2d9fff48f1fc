"""Dependencies shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from interlock.store.outbox import Dispatcher


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


ACTOR_HEADER = "X-Interlock-Actor"


@dataclass(frozen=True)
class Caller:
    """Who made an API call, for the audit trail. Without authentication in front of the API
    the actor is what the caller declares (`X-Interlock-Actor`), prefixed `api:`."""

    actor: str
    origin: str


UNKNOWN_ORIGIN = "unknown"


def request_origin(request: Request) -> str:
    """Where a request came from, for the audit trail's `origin`: the client's address as the
    server saw it (a proxy's own, behind one; forwarded headers are not trusted)."""
    return request.client.host if request.client else UNKNOWN_ORIGIN


def get_caller(request: Request) -> Caller:
    declared = (request.headers.get(ACTOR_HEADER) or "anonymous")[:150]
    return Caller(actor=f"api:{declared}", origin=request_origin(request))


CallerDep = Annotated[Caller, Depends(get_caller)]


def aware(at: datetime | None) -> datetime | None:
    """A query parameter's time, which must carry its time zone."""
    if at is None:
        return None
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()} has no time zone; add one, e.g. Z or +00:00")
    try:
        at.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{at.isoformat()} is out of range") from None
    return at
