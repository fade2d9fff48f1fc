"""W3C trace context: every remote call carries the run's trace id."""

from __future__ import annotations

import hashlib


def traceparent(trace_id: str, span_seed: str) -> str:
    """`00-<trace id>-<span id>-01`; the span id is derived from ``span_seed`` (the attempt key)
    so the same attempt always presents the same parent span."""
    span_id = hashlib.sha256(span_seed.encode()).hexdigest()[:16]
    return f"00-{trace_id}-{span_id}-01"
