"""Chooses the dispatcher: Celery when a broker is configured, else the embedded loop."""

from __future__ import annotations

from interlock.config import settings
from interlock.dispatch.base import Dispatcher


def make_dispatcher() -> Dispatcher:
    if settings().broker_url:
        from interlock.dispatch.celery_app import CeleryDispatcher, app
        return CeleryDispatcher(app())
    from interlock.dispatch.embedded import EmbeddedDispatcher
    return EmbeddedDispatcher()
