"""What people do with approvals: list the inbox, read a request with its evidence, vote.

The CLI and the API both call these. Interlock's own requests and foreign systems' ones
(Airflow's human-in-the-loop tasks) share the inbox; a vote on a foreign request counts
against Interlock's rules first and answers the foreign system once they are met.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from interlock.access.permissions import Permission
from interlock.access.principals import Principal
from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.approvals import evidence, foreign, votes
from interlock.config.env import settings
from interlock.dispatch.periodic import Every
from interlock.errors import NotFound
from interlock.operations.runs import Guard
from interlock.states import ApprovalState
from interlock.store import approvals as store
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher, Work
from interlock.store.tables import ApprovalOrigin, ApprovalRequest, ApprovalVote, TaskKind

MAX_LIST = 500


def list_requests(*, filters: store.RequestFilter, limit: int = 50,
                  mine: Principal | None = None) -> list[dict[str, Any]]:
    """Newest first. ``mine``: only the pending requests this principal could still vote on
    (not excluded from, not voted on, counted by one of its rules)."""
    with session_scope() as session:
        rows = store.list_requests(session, filters=filters, limit=min(limit, MAX_LIST))
        if mine is not None:
            rows = [r for r in rows if votes.could_vote(session, r, mine)]
        return [evidence.summary(r) for r in rows]


def _visible(session: Session, request_id: str, guard: Guard | None) -> ApprovalRequest:
    """The request, if it exists and the guard lets the caller see its namespace."""
    row = store.get(session, request_id)
    if row is None:
        raise NotFound(f"approval request `{request_id}` does not exist")
    if guard is not None:
        guard.check(row.namespace, what=f"approval request `{request_id}`")
    return row


def get_request(request_id: str, *, guard: Guard | None = None) -> dict[str, Any]:
    with session_scope() as session:
        row = _visible(session, request_id, guard)
        shown = evidence.detail(session, row)
    if guard is not None and not guard.allows(Permission.OUTPUTS_READ, row.namespace):
        # Upstream outputs may hold data; the payload being approved is always shown.
        shown["upstream"] = {k: {"state": v["state"]} for k, v in shown["upstream"].items()}
    return shown


def vote(request_id: str, *, principal: Principal, option: str, inputs: dict[str, Any],
         comment: str, dispatcher: Dispatcher, origin: str = audit.LOCAL_ORIGIN,
         guard: Guard | None = None, inputs_are_strings: bool = False) -> dict[str, Any]:
    """Record ``principal``'s vote; when it decides, the run is planned at once (the gated
    node is submitted) or the foreign system is answered."""
    with session_scope() as session:
        row = _visible(session, request_id, guard)
        outcome = votes.cast(session, request_id=request_id, principal=principal,
                             option=option, inputs=inputs, comment=comment, origin=origin,
                             inputs_are_strings=inputs_are_strings)
        is_foreign = row.origin == ApprovalOrigin.FOREIGN.value
    if outcome.run_id is not None and outcome.state is not ApprovalState.PENDING:
        dispatcher.send(Work(TaskKind.ADVANCE, outcome.run_id))
    if is_foreign and outcome.state is not ApprovalState.PENDING:
        foreign.answer(request_id)
    return {"id": outcome.request_id, "state": outcome.state.value,
            "counted_toward": outcome.counted_toward, "tally": outcome.tally}


class ForeignInbox:
    """The reconciler's periodic look at foreign systems' approval requests."""

    name = "foreign-approvals"

    def __init__(self, registry: AdapterRegistry | None = None):
        self.registry = registry or default_registry()
        self._every = Every()

    def maybe_tick(self, dispatcher: object = None) -> int:
        if not self._every.due(settings().approvals_sync_s):
            return 0
        return foreign.sync_all(self.registry)


def votes_of(request_id: str) -> list[ApprovalVote]:
    with session_scope() as session:
        return store.votes_of(session, request_id)
