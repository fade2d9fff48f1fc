"""The reconciler copies foreign systems' own logs only from systems an adapter talks to: a
model endpoint (`llm/`) or an MCP server (`mcp/`) has no log to copy and is not warned
about on every pass."""

from __future__ import annotations

import logging
from pathlib import Path
from textwrap import dedent

import pytest

from interlock.audit.foreign import ForeignLogCopier
from interlock.config.env import settings


def test_systems_without_an_adapter_are_not_looked_at(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        store_url: str) -> None:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          llm/local:
            url: http://127.0.0.1:9/v1
            llm: {}
          mcp/kyc:
            mcp: {command: ["python3", "-c", "pass"]}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    settings.cache_clear()
    with caplog.at_level(logging.WARNING, logger="interlock.audit.foreign"):
        assert ForeignLogCopier().maybe_tick() == 0
    assert caplog.records == []
    settings.cache_clear()
