"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from interlock.dispatch.reconciler import Sender


def get_dispatcher(request: Request) -> Sender:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


DispatcherDep = Annotated[Sender, Depends(get_dispatcher)]
