"""Whether runs are exported: the OpenTelemetry SDK's own variables decide, as for any
instrumented program (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`, headers,
timeout, protocol; `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true` turn it off).
The SDK is the optional extra `interlock[otel]`; with the variables set and the SDK
missing, the processes say so once and export nothing."""

from __future__ import annotations

import logging
import os
from functools import cache
from importlib.util import find_spec

log = logging.getLogger(__name__)
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SDK = "opentelemetry.sdk.trace"
EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


def wanted(env: dict[str, str] | None = None) -> bool:
    env = dict(os.environ) if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINTS)


@cache
def enabled() -> bool:
    """Export runs from this process: asked for, and the SDK is installed."""
    if not wanted():
        return False
    if find_spec("opentelemetry") is None or find_spec(SDK) is None or find_spec(EXPORTER) is None:
        log.error("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not "
                  "installed: pip install 'interlock[otel]'; no run is exported")
        return False
    return True
