"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from interlock.dispatch.base import Dispatcher


def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]
