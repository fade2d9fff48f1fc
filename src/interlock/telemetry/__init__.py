"""OpenTelemetry export of finished runs (`docs/trace.md`, "OpenTelemetry")."""
