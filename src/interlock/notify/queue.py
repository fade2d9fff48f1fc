"""The notifications table's life: rows written in the caller's transaction, claimed by a
sender with a compare-and-set lease, deleted once delivered, due again after a backoff when
a try failed, given up after the webhook's `max_tries`."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from interlock import clock
from interlock.notify.config import WEB_SCHEMES, NotifyConfigError, NotifyEvent, load_webhooks
from interlock.store import audit, facts
from interlock.store.tables import Notification, NotificationState, rowcount
from interlock.store.tables.notifications import ERROR_MAX, NOTIFICATIONS

log = logging.getLogger(__name__)
ACTOR = "notifier"
BACKOFF_FIRST_S = 5.0    # the wait after the first failed try, doubled after each next one
BACKOFF_MAX_S = 600.0    # ... up to ten minutes
# A claimed row is due again after this: its sender died mid-send. Longer than any request
# may take (`Webhook.timeout` is at most 30 s), so a live sender's row is never sent twice.
LEASE_S = 90.0
MAX_SUBJECT_CHARS = 1000
MAX_NAMESPACE_CHARS = 200
MAX_LINK_CHARS = 2000


@dataclass(frozen=True)
class Claim:
    """One row a sender holds: what to send, and `tries`, the lease's compare-and-set key."""

    id: int
    webhook: str
    event: NotifyEvent
    namespace: str
    subject: str
    link: str | None
    payload: dict[str, Any]
    at: datetime
    tries: int


def enqueue(session: Session, *, event: NotifyEvent, namespace: str, subject: str,
            payload: dict[str, Any], link: str | None = None) -> int:
    """One notification row per webhook that wants ``event`` in ``namespace``, written in
    ``session``'s transaction (sent by the reconciler once it commits); returns how many.

    Never raises for a wrong notify file (the change being told about matters more): the
    problems are logged and nothing is queued."""
    try:
        hooks = load_webhooks().matching(event, namespace)
    except NotifyConfigError as exc:
        log.error("no %s notification queued: the notify file is wrong (fix it; later "
                  "events will be sent):\n%s", event.value, exc)
        return 0
    if not hooks:
        return 0
    at = clock.now()
    # Payloads come from flows and foreign systems: made JSON (a date becomes its text) and
    # bounded like the audit trail's, so a huge or deep value becomes its fact (sha256 and
    # size) instead of a huge row.
    kept = facts.bounded(json.loads(facts.encoded(dict(payload))))
    session.add_all([Notification(
        webhook=hook.name, event=event.value, namespace=namespace[:MAX_NAMESPACE_CHARS],
        subject=facts.short(subject, MAX_SUBJECT_CHARS), link=_web_link(link), payload=kept,
        state=NotificationState.PENDING.value, tries=0, next_at=at, last_error=None,
        created_at=at) for hook in hooks])
    return len(hooks)


def _web_link(link: str | None) -> str | None:
    """An http(s) link of sane length, or none (receivers render it as a button)."""
    if not link or len(link) > MAX_LINK_CHARS or urlsplit(link).scheme not in WEB_SCHEMES:
        return None
    return link


def claim_due(session: Session, *, limit: int) -> list[Claim]:
    """Up to ``limit`` due rows, each claimed by a compare-and-set on `tries` (a second
    sender that read the same row claims nothing) and leased for `LEASE_S`."""
    now = clock.now()
    rows = list(session.scalars(
        select(Notification).where(Notification.state == NotificationState.PENDING.value,
                                   Notification.next_at <= now)
        .order_by(Notification.next_at, Notification.id).limit(limit)))
    claims = []
    for row in rows:
        won = session.execute(
            update(NOTIFICATIONS)
            .where(Notification.id == row.id, Notification.tries == row.tries,
                   Notification.state == NotificationState.PENDING.value)
            .values(tries=row.tries + 1, next_at=now + timedelta(seconds=LEASE_S)))
        if rowcount(won) == 1:
            claims.append(Claim(row.id, row.webhook, NotifyEvent(row.event), row.namespace,
                                row.subject, row.link, row.payload, row.created_at,
                                row.tries + 1))
    return claims


def backoff(tries: int) -> timedelta:
    """The wait after ``tries`` failed tries: 5 s, 10 s, 20 s ... at most 10 minutes."""
    return timedelta(seconds=min(BACKOFF_FIRST_S * 2 ** max(tries - 1, 0), BACKOFF_MAX_S))


def delivered(session: Session, claim: Claim) -> None:
    session.execute(delete(NOTIFICATIONS).where(Notification.id == claim.id))


def failed(session: Session, claim: Claim, *, error: str, max_tries: int) -> bool:
    """Record a failed try: due again after the backoff, or given up (logged and audited)
    once ``max_tries`` were made. True when given up. A claim whose lease another sender
    took over changes nothing."""
    error = facts.short(error, ERROR_MAX)
    mine = (Notification.id == claim.id, Notification.tries == claim.tries,
            Notification.state == NotificationState.PENDING.value)
    if claim.tries < max_tries:
        session.execute(update(NOTIFICATIONS).where(*mine).values(
            next_at=clock.now() + backoff(claim.tries), last_error=error))
        return False
    gave_up = rowcount(session.execute(update(NOTIFICATIONS).where(*mine).values(
        state=NotificationState.GIVEN_UP.value, last_error=error)))
    if not gave_up:
        return False
    log.error("notification %d (%s, namespace %s) to webhook %s given up after %d tries: %s",
              claim.id, claim.event.value, claim.namespace, claim.webhook, claim.tries, error)
    audit.record(session, actor=ACTOR, action=audit.Action.NOTIFY_FAILED,
                 target=f"notification/{claim.id}", origin=audit.LOCAL_ORIGIN,
                 after={"webhook": claim.webhook, "event": claim.event.value,
                        "namespace": claim.namespace, "tries": claim.tries, "error": error})
    return True
