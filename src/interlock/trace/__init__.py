"""Failure tracing across systems: a run's timeline, upstream context and root cause.

    build.py    trace_run(run_id) -> RunTrace: one transaction, the entry point
    collect.py  spans of a run, of the foreign runs its attempts started, of its upstream
    spans.py    store rows -> Span
    cause.py    the root cause: first failure in causal order, and the path to it
    links.py    deep links into foreign UIs or attempt directories, built by the adapters
    model.py    the response models (RunTrace, Span, NodeTrace, RootCause)
"""

from interlock.trace.build import build_trace, trace_run
from interlock.trace.model import NodeTrace, RootCause, RunTrace, Span, SpanKind

__all__ = ["NodeTrace", "RootCause", "RunTrace", "Span", "SpanKind", "build_trace",
           "trace_run"]
