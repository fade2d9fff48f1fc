"""Dependencies shared by the routes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request

from interlock.store.outbox import Dispatcher


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]


UNKNOWN_ORIGIN = "unknown"


def request_origin(request: Request) -> str:
    """Where a request came from, for the audit trail's `origin`: the client's address as the
    server saw it (a proxy's own, behind one; forwarded headers are not trusted)."""
    return request.client.host if request.client else UNKNOWN_ORIGIN


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
