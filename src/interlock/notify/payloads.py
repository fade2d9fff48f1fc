"""What a receiver gets: the body (Interlock's generic JSON, or a Slack-compatible message)
and the headers, signed with the webhook's secret.

    X-Interlock-Event: approval.requested
    X-Interlock-Delivery: 42                       # the same on every retry: de-duplicate
    X-Interlock-Signature-256: sha256=<hex of HMAC-SHA256(secret, raw body)>
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from interlock.adapters.signing import SCHEME
from interlock.notify.config import NotifyEvent, WebhookFormat
from interlock.notify.queue import Claim

EVENT_HEADER = "X-Interlock-Event"
DELIVERY_HEADER = "X-Interlock-Delivery"
SIGNATURE_HEADER = "X-Interlock-Signature-256"
CONTENT_TYPE = "application/json"
USER_AGENT = "interlock-notify"

TITLES = {
    NotifyEvent.APPROVAL_REQUESTED: "Approval requested",
    NotifyEvent.APPROVAL_REMINDER: "Reminder: approval still waiting",
    NotifyEvent.APPROVAL_ESCALATED: "Approval escalated",
    NotifyEvent.APPROVAL_DECIDED: "Approval decided",
    NotifyEvent.DEADLINE_LATE: "Deadline missed",
    NotifyEvent.DEADLINE_AT_RISK: "Deadline at risk",
}
# Slack's own limits (a section's text, a field's text, fields per section).
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 300
SLACK_FIELDS_MAX = 10
OPEN_LABEL = "Open in Interlock"


def body(fmt: WebhookFormat, claim: Claim) -> bytes:
    """The bytes posted (and signed): UTF-8 JSON."""
    doc = generic(claim) if fmt is WebhookFormat.JSON else slack(claim)
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def generic(claim: Claim) -> dict[str, Any]:
    return {"id": claim.id, "event": claim.event.value, "subject": claim.subject,
            "namespace": claim.namespace, "link": claim.link, "payload": claim.payload,
            "at": claim.at.isoformat()}


def slack(claim: Claim) -> dict[str, Any]:
    """A message for a Slack incoming webhook (also read by Mattermost and others)."""
    title = TITLES[claim.event]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(
            _cut(f"*{_esc(title)}*\n{_esc(claim.subject)}", SLACK_TEXT_MAX))},
        {"type": "context", "elements": [_mrkdwn(
            f"{_esc(claim.namespace)} · {claim.event.value} · delivery {claim.id}")]},
    ]
    fields = [_mrkdwn(_cut(f"*{_esc(str(k))}*\n{_esc(_plain(v))}", SLACK_FIELD_MAX))
              for k, v in claim.payload.items() if v not in (None, [], {}, "")]
    if fields:
        blocks.append({"type": "section", "fields": fields[:SLACK_FIELDS_MAX]})
    if claim.link:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "url": claim.link,
            "text": {"type": "plain_text", "text": OPEN_LABEL}}]})
    # The top-level text (the notification's preview) is mrkdwn too: escaped as well.
    return {"text": _cut(_esc(f"{title}: {claim.subject} ({claim.namespace})"),
                         SLACK_TEXT_MAX),
            "blocks": blocks}


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _esc(text: str) -> str:
    """Slack's three control characters: `<!channel>` or `<url|label>` stay literal text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def signature(key: str, raw: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, keyed by the webhook's secret."""
    return SCHEME + hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()


def headers(claim: Claim, raw: bytes, key: str | None) -> dict[str, str]:
    out = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT,
           EVENT_HEADER: claim.event.value, DELIVERY_HEADER: str(claim.id)}
    if key is not None:
        out[SIGNATURE_HEADER] = signature(key, raw)
    return out
