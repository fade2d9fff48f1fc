"""Webhooks: a business event starts a flow (`triggers: [{webhook: {key: ...}}]`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Request, Response

from interlock.api.deps import DispatcherDep, request_origin
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import public
from interlock.operations import runs as ops
from interlock.operations import webhooks
from interlock.store.views import RunDetail
from interlock.triggers.firing import WebhookRefused

UNSIGNED = "the webhook's X-Hub-Signature-256 is missing or wrong"


async def _raw_body(request: Request) -> bytes:
    """The body as sent (what a signature covers); Starlette keeps it for the JSON parse."""
    return await request.body()


router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.post("/{namespace}/{flow_id}/{key}", status_code=201, response_model=RunDetail,
             responses={200: {"model": RunDetail,
                              "description": "a repeated Idempotency-Key: the earlier run"}},
             dependencies=[public("the trigger's key (and its signature, when the trigger "
                                  "asks for one) authenticates the sender")])
def fire(namespace: str, flow_id: str, key: str, request: Request, response: Response,
         dispatcher: DispatcherDep,
         payload: Annotated[dict[str, Any], Body(description="the run's inputs")],
         raw: Annotated[bytes, Depends(_raw_body)],
         idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
         x_hub_signature_256: Annotated[str | None, Header(max_length=100)] = None,
         ) -> RunDetail:
    try:
        run_id, created = webhooks.fire_webhook(
            namespace=namespace, flow_id=flow_id, key=key, payload=payload,
            origin=request_origin(request), idempotency_key=idempotency_key,
            dispatcher=dispatcher, body=raw, signature=x_hub_signature_256)
    except WebhookRefused:
        raise HTTPException(401, UNSIGNED) from None
    if not created:
        response.status_code = 200
    return ops.get_run(run_id).without_outputs()  # the sender holds a key, not outputs:read
