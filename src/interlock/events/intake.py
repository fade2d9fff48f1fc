"""Events pushed by foreign systems (`POST /api/v1/events/{kind}`).

A pushed event is a hint, verified but not trusted for the outcome: for an attempt of
ours it makes the attempt due for a poll now, and the poll reads the result (state,
outputs, failed task and log) from the system's API. For a run Interlock did not start,
it is recorded as an external run, and a finished one fires `after:` triggers.
Every event, accepted or refused, goes into the audit trail, as facts, not payloads
(`store.facts`): an accepted event's short fields as they are, its `output_tail`, `conf`,
`error` and anything long or nested as sha256 + size; a refused one as who claimed to send
it, why it was refused and the sha256 + size of its body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.adapters import signing
from interlock.adapters.contract import ForeignEvent
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.config.systems import SecretError, UnknownSystem, load_systems
from interlock.errors import InterlockError, Rejected
from interlock.events import assets
from interlock.states import NodeState
from interlock.store import audit, external, facts, signatures
from interlock.store.db import session_scope
from interlock.store.outbox import Dispatcher, PollBatch
from interlock.store.tables import ATTEMPTS, Attempt
from interlock.triggers.firing import Fired, after_foreign_run, send_fired

log = logging.getLogger(__name__)


class Refused(InterlockError):
    """The event is not from who it claims to be: 401. The message is the detailed reason,
    for the audit trail and the log; the caller is told only `REFUSED`."""


# What a refused caller is told: nothing about the systems file, the registered systems or
# the secrets' variable names (the reason is in the audit record, actor `unverified:<name>`).
REFUSED = "the event is not signed by a registered system; see the audit trail for why"
UNVERIFIED = "unverified:"
UNKNOWN = "unknown"  # the claimed system of an event whose body was not read


class Malformed(InterlockError):
    """The event is authentic but cannot be read: 400 / 422."""


@dataclass(frozen=True)
class Outcome:
    attempt_id: int | None = None        # our attempt the event is about
    external_run_id: int | None = None   # the external run row it updated
    fired: list[Fired] = field(default_factory=list)


def receive(kind: str, body: bytes, headers: Mapping[str, str], *, dispatcher: Dispatcher,
            origin: str, registry: AdapterRegistry | None = None) -> Outcome:
    payload = _authentic(kind, body, headers, origin)
    try:
        event = (registry or default_registry()).get(kind).parse_event(payload)
    except (Rejected, UnknownAdapter) as exc:
        _refuse(kind, payload.get("system"), f"malformed event: {exc}", origin, body=body)
        raise Malformed(str(exc)) from None
    return apply(kind, event, dispatcher=dispatcher, origin=origin, payload=payload)


def apply(kind: str, event: ForeignEvent, *, dispatcher: Dispatcher, origin: str,
          payload: dict[str, Any] | None = None) -> Outcome:
    """Act on an event, pushed (``payload`` given: it is audited) or found by polling."""
    for attempt_left in (True, False):  # a concurrent first sighting of the run: once more
        try:
            outcome = _apply(kind, event, payload, origin)
            break
        except IntegrityError:
            if not attempt_left:
                raise
    if outcome.attempt_id is not None:
        dispatcher.send_polls(PollBatch(kind, [outcome.attempt_id]))
    send_fired(dispatcher, outcome.fired)
    return outcome


def _authentic(kind: str, body: bytes, headers: Mapping[str, str],
               origin: str) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        _refuse(kind, None, "body is not a JSON object", origin, verified=False, body=body)
        raise Malformed("the body must be a JSON object")
    name = payload.get("system")
    try:
        system = load_systems().get(str(name), kind=kind)
        if system.events_secret is None:
            raise Refused(f"system {name} has no `events_secret` in the systems file, so it "
                          "cannot push events; add one and give the same secret to the plugin")
        given = headers.get(signing.SIGNATURE_HEADER)
        signing.verify(system.events_secret.resolve(system=system.name),
                       timestamp=headers.get(signing.TIMESTAMP_HEADER), given=given, body=body)
        if not signatures.claim_signature(f"{system.name}:{given}",
                                          keep_s=signing.TOLERANCE_S):
            raise Refused("this signature was accepted before: a replayed event")
    except (UnknownSystem, SecretError, Refused, signing.BadSignature) as exc:
        _refuse(kind, name, str(exc), origin, verified=False, body=body)
        log.warning("event refused on events/%s (claims %r): %s", kind, str(name)[:200], exc)
        raise Refused(str(exc)) from None
    return payload


def refuse_unread(kind: str, reason: str, origin: str, *, size: int | None) -> None:
    """Audit an event the request limits refused before it was read (too large, too
    deep): who sent it is unknown, ``size`` is the body's declared or counted bytes."""
    _record_refusal(UNVERIFIED + UNKNOWN, kind, origin,
                    {"reason": facts.short(reason), "body": {facts.BYTES: size}})


def _refuse(kind: str, system: Any, reason: str, origin: str, *, body: bytes,
            verified: bool = True) -> None:
    """Audit a refused event: who it claims to be from, why, and its body as a fact. One
    whose signature was not verified is recorded as `unverified:<the name it claims>`,
    never under that name."""
    claimed = str(system or UNKNOWN)[:150]
    _record_refusal(claimed if verified else UNVERIFIED + claimed, kind, origin,
                    {"reason": facts.short(reason), "body": facts.fact(body)})


def _record_refusal(actor: str, kind: str, origin: str, after: dict[str, Any]) -> None:
    with session_scope() as session:
        audit.record(session, actor=actor, action=audit.Action.EVENT_REFUSED,
                     target=f"events/{kind}"[:300], after=after, origin=origin)


def _apply(kind: str, event: ForeignEvent, payload: dict[str, Any] | None,
           origin: str) -> Outcome:
    with session_scope() as session:
        attempt_id, in_flight = _our_attempt(session, kind, event)
        seen = external.record(session, event, attempt_id=attempt_id) if event.about_run \
            else None
        if payload is not None:
            audit.record(session, actor=event.system, action=audit.Action.EVENT_ACCEPTED,
                         target=f"{event.system}/{event.job_id}/{event.external_id}",
                         after=facts.fields(payload), origin=origin)
        poll_now = in_flight and event.about_run
        if poll_now:
            session.execute(update(ATTEMPTS).where(Attempt.id == attempt_id)
                            .values(next_poll_at=clock.now()))
        fired = after_foreign_run(session, seen.run, origin=origin) \
            if seen is not None and seen.finished_now else []
        wrote = list(event.assets)  # data it wrote, pushed with it
        if seen is not None and seen.finished_now and event.state is NodeState.SUCCEEDED:
            wrote += assets.of_job(event)  # a job mapped as a whole to a dataset
        fired += assets.take_in(session, wrote, origin=origin)
        return Outcome(attempt_id=attempt_id if poll_now else None,
                       external_run_id=seen.run.id if seen else None, fired=fired)


def _our_attempt(session: Session, kind: str, event: ForeignEvent) -> tuple[int | None, bool]:
    """The attempt that started this foreign run, if Interlock did, and whether it is
    still in flight (the newest one: a native retry reuses the run)."""
    rows = session.execute(select(Attempt.id, Attempt.handle, Attempt.state).where(
        Attempt.external_id == event.external_id, Attempt.uses == kind)
        .order_by(Attempt.id.desc())).all()
    for attempt_id, handle, state in rows:
        if (handle or {}).get("system") == event.system:
            return int(attempt_id), state == NodeState.RUNNING.value
    return None, False
