"""Webhooks: a business event starts a flow (`triggers: [{webhook: {key: ...}}]`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request, Response

from interlock.api.deps import DispatcherDep, request_origin
from interlock.api.errors import ERROR_RESPONSES
from interlock.operations import runs as ops
from interlock.operations import webhooks
from interlock.store.views import RunDetail

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post("/{namespace}/{flow_id}/{key}", status_code=201, response_model=RunDetail,
             responses={200: {"model": RunDetail,
                              "description": "a repeated Idempotency-Key: the earlier run"}})
def fire(namespace: str, flow_id: str, key: str, request: Request, response: Response,
         dispatcher: DispatcherDep,
         payload: Annotated[dict[str, Any], Body(description="the run's inputs")],
         idempotency_key: Annotated[str | None, Header(max_length=200)] = None) -> RunDetail:
    run_id, created = webhooks.fire_webhook(
        namespace=namespace, flow_id=flow_id, key=key, payload=payload,
        origin=request_origin(request),
        idempotency_key=idempotency_key, dispatcher=dispatcher)
    if not created:
        response.status_code = 200
    return ops.get_run(run_id)
