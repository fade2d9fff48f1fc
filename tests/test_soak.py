"""The chaos soak, 2 minutes (`bench/soak.py` runs it for 10 for the figure in
docs/benchmarks.md): private Redis and PostgreSQL, 2 workers, 2 schedulers, 2 APIs, a seeded
plan of faults (every kind at least once: SIGKILL of a worker, a scheduler, an API; SIGSTOP
of a worker past its lease; Redis and PostgreSQL restarted), then the same invariants:
nothing stuck, nothing lost, nothing done twice, every tick, webhook and cron report once,
the audit chain intact, a probe run completed after every fault.

INTERLOCK_SKIP_SOAK=1 skips it; INTERLOCK_SOAK_SEED picks another plan (the default is fixed
so CI replays the same one); INTERLOCK_SOAK_MINUTES another length."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.soak_run import SoakConfig, run_soak
from tests.soak_services import services_missing

MISSING = services_missing()
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("INTERLOCK_SKIP_SOAK", "") not in ("", "0"),
                                 reason="INTERLOCK_SKIP_SOAK is set"),
              pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def test_two_minute_chaos_soak_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    config = SoakConfig(minutes=float(os.environ.get("INTERLOCK_SOAK_MINUTES", "2")),
                        seed=int(os.environ.get("INTERLOCK_SOAK_SEED", "18")),
                        home=tmp_path / "soak")
    report = run_soak(config)
    print("\n" + report.text())
    assert report.ok, report.text()
