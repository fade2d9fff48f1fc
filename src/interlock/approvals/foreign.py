"""One inbox across tools: foreign systems' human-in-the-loop requests (Airflow's HITL
tasks) kept as approval requests of origin `foreign`.

`sync_all` (the periodic job `operations.approvals.ForeignInbox`) lists each system's
pending requests and adds the new ones; a request that left the list was answered in the
system's own UI (closed here as `answered` and audited as a foreign action) or forgotten
(`cancelled`). A request decided here, under Interlock's rules, is answered in the system
through its adapter; an answer that did not go through (the system was down) is sent again
on the next look.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from interlock.adapters.contract import ForeignApproval
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.approvals import notices
from interlock.config.systems import ForeignApprovals, System, load_systems
from interlock.errors import AdapterError, Conflict, InterlockError
from interlock.spec.approvals import QuorumRule
from interlock.states import ApprovalState
from interlock.store import approvals as store
from interlock.store import audit, facts
from interlock.store.db import session_scope
from interlock.store.tables import ApprovalOrigin, ApprovalRequest

log = logging.getLogger(__name__)
ACTOR = "inbox"
ANSWERED_KEY = "answered"  # details[...]: when Interlock's decision reached the system
_OPEN_OR_UNSENT = (ApprovalState.PENDING, ApprovalState.APPROVED, ApprovalState.REJECTED)


def systems_with_approvals(registry: AdapterRegistry) -> list[System]:
    found = []
    for name in load_systems().names():
        system = load_systems().get(name)
        try:
            if registry.adapter_class(system.kind).has_approvals():
                found.append(system)
        except UnknownAdapter:
            continue
    return found


def sync_all(registry: AdapterRegistry | None = None) -> int:
    """Look at every system's requests once; returns how many requests changed here."""
    registry = registry or default_registry()
    changed = 0
    for system in systems_with_approvals(registry):
        try:
            changed += sync(system, registry)
        except (AdapterError, InterlockError) as exc:
            log.warning("listing approval requests of %s failed, next look retries: %s",
                        system.name, exc)
    return changed


def sync(system: System, registry: AdapterRegistry) -> int:
    adapter = registry.get(system.kind)
    pending = {r.ref: r for r in adapter.foreign_approvals(system.name)}
    config = system.approvals or ForeignApprovals()
    changed = 0
    with session_scope() as session:
        known = {row.ref: row for row in session.scalars(select(ApprovalRequest).where(
            ApprovalRequest.system == system.name,
            ApprovalRequest.state.in_([s.value for s in _OPEN_OR_UNSENT])))}
        for ref, request in pending.items():
            if ref not in known and not _seen_before(session, system.name, ref):
                notices.requested(session, _add(session, system, config, request))
                changed += 1
    for ref, row in known.items():
        if row.state != ApprovalState.PENDING.value:
            if not row.details.get(ANSWERED_KEY):
                answer(row.id, registry)
        elif ref not in pending:
            changed += _closed_elsewhere(system, row, adapter.foreign_approval(system.name, ref))
    return changed


def _seen_before(session: Any, system: str, ref: str) -> bool:
    return session.scalar(select(ApprovalRequest.id).where(
        ApprovalRequest.system == system, ApprovalRequest.ref == ref)) is not None


def _add(session: Any, system: System, config: ForeignApprovals,
         request: ForeignApproval) -> ApprovalRequest:
    rules = [QuorumRule.model_validate(r).model_dump(mode="json") for r in config.rules]
    rejecting = [o for o in request.options if o in config.reject_options]
    payload = {"job": request.job_id, "run": request.external_id, "task": request.task,
               "options": list(request.options), "params": facts.bounded(request.params)}
    return store.new_request(
        session, actor=f"{system.name}:{ACTOR}"[:200], audit_origin=system.name,
        origin=ApprovalOrigin.FOREIGN.value,
        namespace=config.namespace, flow=None, run_id=None, node_id=None, system=system.name,
        ref=request.ref[:1000], subject=facts.short(request.subject or request.task, 500),
        body=(request.body or "")[:20_000], options=list(request.options),
        reject_options=rejecting,
        inputs_spec={k: {"type": "string"} for k in request.params},
        rules=rules, escalation=None, payload=payload,
        payload_hash=hashlib.sha256(repr(sorted(payload.items())).encode()).hexdigest(),
        excluded={}, requested_by=system.name, link=_link(system, request),
        details={"job": request.job_id, "run": request.external_id, "task": request.task,
                 "multiple": request.multiple, "defaults": list(request.defaults),
                 "assigned": list(request.assigned)})


def _link(system: System, request: ForeignApproval) -> str | None:
    try:
        adapter = default_registry().get(system.kind)
    except UnknownAdapter:
        return None
    return adapter.run_link(system.ui, request.job_id, request.external_id,
                            task_id=request.task)


def _closed_elsewhere(system: System, row: ApprovalRequest,
                      seen: ForeignApproval | None) -> int:
    with session_scope() as session:
        fresh = store.get(session, row.id, lock=True)
        if fresh is None or fresh.state != ApprovalState.PENDING.value:
            return 0
        if seen is not None and not seen.responded:
            return 0  # still waiting (listed late): next look
        if seen is None:
            return int(store.set_state(session, fresh, expected=ApprovalState.PENDING,
                                       to=ApprovalState.CANCELLED, actor=system.name,
                                       reason=f"{system.name} no longer has this request",
                                       origin=system.name))
        who = seen.responded_by or "someone"
        reason = f"answered in {system.name} by {who}: {', '.join(seen.chosen)}"
        audit.record(session, actor=f"{system.name}:{who}"[:200],
                     action=audit.Action.FOREIGN_ACTION, target=store.target(fresh),
                     origin=system.name,
                     after={"event": "approval answered", "chosen": list(seen.chosen),
                            "at": seen.responded_at.isoformat() if seen.responded_at else None})
        store.set_state(session, fresh, expected=ApprovalState.PENDING,
                        to=ApprovalState.ANSWERED, actor=f"{system.name}:{who}"[:200],
                        reason=reason, origin=system.name,
                        option=seen.chosen[0][:64] if seen.chosen else None,
                        decided_by=[f"{system.name}:{who}"],
                        decision_inputs=facts.bounded(seen.params_input) or {})
        notices.decided(session, fresh)
        return 1


def answer(request_id: str, registry: AdapterRegistry | None = None) -> bool:
    """Send Interlock's decision on a foreign request to its system; True once it is there
    (or the system had already been answered, which is recorded)."""
    registry = registry or default_registry()
    with session_scope() as session:
        row = store.get(session, request_id)
        if row is None or row.system is None or row.ref is None or row.option is None \
                or row.details.get(ANSWERED_KEY):
            return False
        system, ref, option = row.system, row.ref, row.option
        inputs = dict(row.decision_inputs)
    try:
        adapter = registry.get(load_systems().get(system).kind)
        adapter.answer_approval(system, ref, chosen=[option], params_input=inputs)
        note = "answered"
    except Conflict as exc:
        note = f"already answered in {system}: {exc}"
    except (AdapterError, InterlockError, ValidationError) as exc:
        log.warning("answering %s in %s failed, next look retries: %s", request_id, system, exc)
        return False
    with session_scope() as session:
        row = store.get(session, request_id, lock=True)
        if row is None:
            return False
        row.details = {**row.details, ANSWERED_KEY: note}
        audit.record(session, actor=ACTOR, action=audit.Action.APPROVAL_STATE,
                     target=store.target(row), origin=system,
                     after={"state": row.state, "sent_to": system, "option": option,
                            "result": facts.short(note)})
    return True
