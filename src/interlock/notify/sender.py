"""Sending what is owed: `deliver_due` (one bounded round) and `NotificationSender`, the
reconciler's periodic job that runs rounds in a thread of their own.

A round claims at most `BATCH` due rows, posts them `PARALLEL` at a time with the webhook's
short timeout, then records every outcome in one transaction: a 2xx deletes the row; any
other answer, a refused connection or a timeout makes it due again after a backoff, or
gives it up after its last try. The reconciler only starts rounds and never waits for one,
so a slow or dead receiver delays other notifications at most, never a run.

Secrets and URLs written as references are resolved here, for each try, and never written
to a row or a log line; errors name the webhook, never its URL.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from interlock.config.systems import SecretError
from interlock.notify import payloads, queue
from interlock.notify.config import NotifyConfigError, Webhook, Webhooks, load_webhooks, notify_path
from interlock.notify.queue import Claim
from interlock.store.db import session_scope

log = logging.getLogger(__name__)
BATCH = 20          # rows one round claims
PARALLEL = 4        # requests in flight at once in a round
EVERY_S = 1.0       # how often the reconciler starts a round (when none is running)
CONNECT_S = 3.0     # a receiver that does not accept the connection in this long is down


_posting = threading.local()


class _QuietWhilePosting(logging.Filter):
    """httpx logs every request's whole URL; a webhook URL may be a credential (Slack's
    are), so its lines are dropped in a thread while it posts a notification (ours say what
    happened and name the webhook instead)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_posting, "on", False)


logging.getLogger("httpx").addFilter(_QuietWhilePosting())


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str = ""
    final: bool = False  # no point trying again (the webhook left the notify file)


@dataclass
class Round:
    """What one round did, for logs and tests."""

    sent: int = 0
    retried: int = 0
    given_up: int = 0


def deliver_due(*, limit: int = BATCH) -> Round:
    """Claim up to ``limit`` due notifications, post them, record the outcomes."""
    try:
        hooks = load_webhooks()
    except NotifyConfigError as exc:
        # Leave the rows alone (no try is spent): they go once the file is fixed.
        log.error("notifications not sent: the notify file is wrong:\n%s", exc)
        return Round()
    with session_scope() as session:
        claims = queue.claim_due(session, limit=limit)
    if not claims:
        return Round()
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(claims)),
                            thread_name_prefix="interlock-notify-post") as pool:
        outcomes = list(pool.map(lambda c: attempt(c, hooks.get(c.webhook)), claims))
    return _record(hooks, claims, outcomes)


def _record(hooks: Webhooks, claims: list[Claim], outcomes: list[Outcome]) -> Round:
    done = Round()
    with session_scope() as session:
        for claim, outcome in zip(claims, outcomes, strict=True):
            if outcome.ok:
                queue.delivered(session, claim)
                done.sent += 1
                continue
            hook = hooks.get(claim.webhook)
            max_tries = claim.tries if outcome.final or hook is None else hook.max_tries
            if queue.failed(session, claim, error=outcome.error, max_tries=max_tries):
                done.given_up += 1
            else:
                done.retried += 1
                log.warning("notification %d (%s) to webhook %s failed (try %d of %d): %s; "
                            "tried again in %.0f s", claim.id, claim.event.value,
                            claim.webhook, claim.tries, max_tries, outcome.error,
                            queue.backoff(claim.tries).total_seconds())
    return done


def attempt(claim: Claim, hook: Webhook | None) -> Outcome:
    """One try of one notification; never raises for what the receiver does."""
    if hook is None:
        return Outcome(False, f"webhook {claim.webhook} is no longer in the notify file",
                       final=True)
    try:
        url, key = hook.target(), hook.key()
    except (SecretError, ValueError) as exc:
        return Outcome(False, str(exc))  # names the variable or file, never a value
    raw = payloads.body(hook.format, claim)
    timeout = httpx.Timeout(hook.timeout, connect=min(hook.timeout, CONNECT_S))
    _posting.on = True
    try:
        # Not following redirects: a signed body goes to the configured receiver only.
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=raw,
                                   headers=payloads.headers(claim, raw, key))
    except httpx.TimeoutException:
        return Outcome(False, f"no answer within {hook.timeout:g} s")
    except httpx.HTTPError as exc:
        # The class only: some of httpx's texts quote the URL, which may be a secret.
        return Outcome(False, f"could not reach the receiver ({type(exc).__name__})")
    finally:
        _posting.on = False
    if response.is_success:
        return Outcome(True)
    return Outcome(False, f"the receiver answered HTTP {response.status_code}")


class NotificationSender:
    """The reconciler's periodic job: starts a round every `EVERY_S` seconds when a notify
    file is configured and the previous round is over; never waits for one."""

    name = "notifications"

    def __init__(self, *, every_s: float = EVERY_S, limit: int = BATCH) -> None:
        self.every_s, self.limit = every_s, limit
        self._next = 0.0
        self._thread: threading.Thread | None = None
        self.failures = 0

    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def maybe_tick(self, dispatcher: object = None) -> int:
        """1 when a round was started, else 0."""
        now = time.monotonic()
        if self.busy() or now < self._next:
            return 0
        self._next = now + self.every_s
        if notify_path() is None:
            return 0  # rows left from when one was configured wait for the next one
        self._thread = threading.Thread(target=self._round, name="interlock-notify",
                                        daemon=True)
        self._thread.start()
        return 1

    def _round(self) -> None:
        try:
            done = deliver_due(limit=self.limit)
        except Exception:  # the store is down...: the next round tries again
            self.failures += 1
            log.exception("notification round failed (%d so far)", self.failures)
            return
        if done.sent or done.given_up:
            log.info("notifications: %d sent, %d to retry, %d given up", done.sent,
                     done.retried, done.given_up)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the round under way (tests, shutdown); True when none is left."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.busy()
