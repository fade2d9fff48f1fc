"""Chooses the dispatcher: Celery when a broker is configured, else the embedded loop."""

from __future__ import annotations

from interlock.config import settings
from interlock.dispatch.reconciler import Sender


def make_dispatcher() -> Sender:
    if settings().broker_url:
        from interlock.dispatch.celery_app import CeleryDispatcher, app
        return CeleryDispatcher(app())  # type: ignore[return-value]
    from interlock.dispatch.embedded import EmbeddedDispatcher
    return EmbeddedDispatcher()  # type: ignore[return-value]
