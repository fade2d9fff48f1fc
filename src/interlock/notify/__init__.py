"""Outbound notifications: webhooks told when an approval is requested, reminded, escalated
or decided (`docs/notifications.md`).

`enqueue` writes one row per matching webhook in the caller's transaction; the reconciler's
`NotificationSender` posts them later (a generic signed JSON body or a Slack-compatible
one), retries with backoff and gives up after the webhook's `max_tries`, never blocking a
run. The webhooks are read from the notify file (`INTERLOCK_NOTIFY_FILE`).
"""

from interlock.notify.config import (
    NotifyConfigError,
    NotifyEvent,
    Webhook,
    WebhookFormat,
    Webhooks,
    load_webhooks,
    parse_webhooks,
)
from interlock.notify.queue import enqueue
from interlock.notify.sender import NotificationSender, Round, deliver_due

__all__ = ["NotificationSender", "NotifyConfigError", "NotifyEvent", "Round", "Webhook",
           "WebhookFormat", "Webhooks", "deliver_due", "enqueue", "load_webhooks",
           "parse_webhooks"]
