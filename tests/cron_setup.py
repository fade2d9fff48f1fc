"""What the cron tests share: a host's mapping file, its systems entry, the wrapper's env."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

SYSTEM = "cron/testhost"
SECRET = "cron-test-secret"
SECRET_ENV = "CRON_TEST_EVENTS_SECRET"

MAPPING = """
system: cron/testhost
source: tests
jobs:
  report:
    schedule: "*/10 * * * *"
    timezone: UTC
    command: echo "hello-$GREETING"; cat
    stdin: "line one\\nline two"
    env: {GREETING: world, MAILTO: ops@example.com}
    grace: 2m
    missed_after: 6m
    monitor_from: 2026-11-24T10:00:00Z
  fail:
    schedule: "@daily"
    command: echo boom >&2; exit 4
    monitor: false
  boot:
    schedule: "@reboot"
    command: "true"
"""


@dataclass(frozen=True)
class CronHost:
    root: Path
    spool: Path

    def wrapper_env(self, api_port: int, **extra: str) -> dict[str, str]:
        env = {**os.environ, "INTERLOCK_API_URL": f"http://127.0.0.1:{api_port}",
               "INTERLOCK_CRON_SECRET": SECRET, "INTERLOCK_CRON_SPOOL": str(self.spool),
               "INTERLOCK_CRON_SYSTEM": SYSTEM, "INTERLOCK_CRON_TIMEOUT": "2"}
        return {**env, **extra}

    def wrap(self, api_port: int, job: str, *command: str, stdin: bytes = b"",
             **extra: str) -> subprocess.CompletedProcess[bytes]:
        """`interlock cron exec` as crond would call it."""
        return subprocess.run(
            [sys.executable, "-m", "interlock", "cron", "exec", "--job", job, "--", *command],
            input=stdin, capture_output=True, env=self.wrapper_env(api_port, **extra),
            timeout=60, check=False)

    def spooled(self) -> list[Path]:
        return sorted(self.spool.glob("*.json")) if self.spool.is_dir() else []


def install_host(root: Path, monkeypatch: pytest.MonkeyPatch) -> CronHost:
    mappings = root / "mappings"
    mappings.mkdir()
    (mappings / "cron-testhost.yaml").write_text(dedent(MAPPING).lstrip(), encoding="utf-8")
    systems = root / "systems.yaml"
    systems.write_text(f"systems:\n  {SYSTEM}:\n    events_secret: {{env: {SECRET_ENV}}}\n",
                       encoding="utf-8")
    monkeypatch.setenv("INTERLOCK_MAPPINGS", str(mappings))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv(SECRET_ENV, SECRET)
    return CronHost(root=root, spool=root / "spool")
