"""The HTTP API: FastAPI under /api/v1, OpenAPI at /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from interlock import __version__
from interlock.api import errors, limits, security
from interlock.api.routes import (
    approvals,
    audit,
    cron,
    events,
    flows,
    health,
    lineage,
    login,
    me,
    policies,
    runs,
    stream,
    webhooks,
)
from interlock.api.routes.console import router as console_router
from interlock.api.routes.dashboards import router as dashboards_router
from interlock.api.routes.metrics import router as metrics_router
from interlock.api.routes.tokens import router as tokens_router
from interlock.api.routes.trace import router as trace_router
from interlock.console.sse import StreamHub
from interlock.operations.runtime import make_dispatcher
from interlock.store.db import engine_for
from interlock.store.outbox import Dispatcher

API_PREFIX = "/api/v1"


def create_app(dispatcher: Dispatcher | None = None) -> FastAPI:
    """The app; ``dispatcher`` defaults to Celery with a broker, else the embedded loop."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine_for()  # migrate before the first request
        app.state.dispatcher = dispatcher or make_dispatcher()
        app.state.streams.watch_exit_signals()  # open streams would hold shutdown back
        yield
        app.state.streams.shutdown()
        close = getattr(app.state.dispatcher, "close", None)
        if dispatcher is None and close is not None:
            close()

    app = FastAPI(title="Interlock", version=__version__, lifespan=lifespan,
                  description="One control plane above Airflow, Dagster, cron, robots and scripts.")
    app.state.streams = StreamHub()  # the console's live streams (`console/sse.py`)
    errors.install(app)
    security.install(app)
    # body size, JSON depth, forgeable requests; a refused push is still audited
    app.add_middleware(limits.RequestLimits,
                       on_refused=events.audit_refused(API_PREFIX + events.router.prefix))
    app.include_router(runs.router, prefix=API_PREFIX)
    app.include_router(flows.router, prefix=API_PREFIX)
    app.include_router(approvals.router, prefix=API_PREFIX)
    app.include_router(policies.router, prefix=API_PREFIX)
    app.include_router(events.router, prefix=API_PREFIX)
    app.include_router(webhooks.router, prefix=API_PREFIX)
    app.include_router(cron.router, prefix=API_PREFIX)
    app.include_router(audit.router, prefix=API_PREFIX)
    app.include_router(trace_router, prefix=API_PREFIX)
    app.include_router(lineage.router, prefix=API_PREFIX)
    app.include_router(dashboards_router, prefix=API_PREFIX)
    app.include_router(tokens_router, prefix=API_PREFIX)
    app.include_router(me.router, prefix=API_PREFIX)
    app.include_router(login.router, prefix=API_PREFIX)
    app.include_router(stream.router, prefix=API_PREFIX)
    app.include_router(metrics_router)
    app.include_router(health.router)  # /healthz, /readyz: public, for probes
    app.include_router(console_router)  # last: `/` and the console's client routes

    return app
