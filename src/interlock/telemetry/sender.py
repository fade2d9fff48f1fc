"""The EXPORT work of a finished run: its spans to the OTLP collector, at least once (the
outbox row stays until the collector took them; a collector that is down is tried again
after the lease)."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.tables import TaskKind

log = logging.getLogger(__name__)


@cache
def exporter() -> Any:
    """The SDK's OTLP/HTTP exporter, configured by the standard OTEL_* variables."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()


def send(run_id: str) -> int:
    """Export ``run_id``; raises Transient when the collector did not take it."""
    from interlock.telemetry.export import export_run  # the SDK only where it is used
    sent = export_run(run_id, exporter())
    with session_scope() as session:
        outbox.complete(session, kind=TaskKind.EXPORT, run_id=run_id)
    log.debug("exported %d spans of run %s", sent, run_id)
    return sent
