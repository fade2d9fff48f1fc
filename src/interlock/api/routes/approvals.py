"""Approvals: the inbox (Interlock's gates and foreign systems' requests), a request with its
evidence, and votes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from interlock.access.permissions import Permission
from interlock.api.deps import DispatcherDep
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import Access, requires
from interlock.operations import approvals as ops
from interlock.states import ApprovalState
from interlock.store.approvals import RequestFilter
from interlock.store.tables import ApprovalOrigin

router = APIRouter(prefix="/approvals", tags=["approvals"], responses=ERROR_RESPONSES)
MAX_INPUTS = 50


class VoteBody(BaseModel):
    option: str = Field(max_length=64, description="one of the request's `options`")
    inputs: dict[str, Any] = Field(default_factory=dict, max_length=MAX_INPUTS,
                                   description="the request's typed inputs, when approving")
    comment: str = Field(default="", max_length=4000)
    inputs_are_strings: bool = False


class VoteResult(BaseModel):
    id: str
    state: ApprovalState
    counted_toward: list[str]
    tally: str


@router.get("")
def list_approvals(state: ApprovalState | None = None,
                   namespace: Annotated[str | None, Query(max_length=200)] = None,
                   flow: Annotated[str | None, Query(max_length=330)] = None,
                   run_id: Annotated[str | None, Query(max_length=40)] = None,
                   origin: ApprovalOrigin | None = None,
                   mine: Annotated[bool, Query(description=(
                       "only pending requests the caller could still vote on"))] = False,
                   limit: Annotated[int, Query(ge=1, le=ops.MAX_LIST)] = 50, *,
                   access: Annotated[Access, requires(Permission.APPROVALS_READ)],
                   ) -> list[dict[str, Any]]:
    """Newest first, in the namespaces the caller may read."""
    states = (ApprovalState.PENDING,) if mine and state is None else \
        ((state,) if state else ())
    filters = RequestFilter(states=states, namespace=namespace, flow=flow, run_id=run_id,
                            origin=origin, namespaces=access.patterns())
    return ops.list_requests(filters=filters, limit=limit,
                             mine=access.principal if mine else None)


@router.get("/{request_id}")
def get_approval(request_id: str,
                 access: Annotated[Access, requires(Permission.APPROVALS_READ)],
                 ) -> dict[str, Any]:
    """The request and its evidence: the run, the values it releases, the upstream outputs
    (with `outputs:read`), votes, what is missing, and the lineage impact."""
    return ops.get_request(request_id, guard=access)


@router.post("/{request_id}/votes", response_model=VoteResult)
def vote(request_id: str, body: VoteBody, dispatcher: DispatcherDep,
         access: Annotated[Access, requires(Permission.APPROVALS_APPROVE)]) -> VoteResult:
    """One vote per person. 403 when the caller may not decide this request (not in its
    rules, or started the run), 409 when it is already decided or timed out."""
    result = ops.vote(request_id, principal=access.principal, option=body.option,
                      inputs=body.inputs, comment=body.comment, dispatcher=dispatcher,
                      origin=access.origin, guard=access,
                      inputs_are_strings=body.inputs_are_strings)
    return VoteResult.model_validate(result)
