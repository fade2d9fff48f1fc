"""The chaos soak, 2 minutes (`bench/soak.py` runs it for 10 for the figure in
docs/benchmarks.md): private Redis and PostgreSQL, 2 workers, 2 schedulers, 2 APIs, a seeded
plan of faults (every kind at least once: SIGKILL of a worker, a scheduler, an API; SIGSTOP
of a worker past its lease; Redis and PostgreSQL restarted; the attempts disk full), then the
same invariants: nothing stuck, nothing lost, nothing done twice, every tick, webhook and
cron report once, the audit chain intact, a probe run completed after every fault. The test
also checks that every kind was really injected and followed by a recovery; the full disk
needs root (a tmpfs), which CI has: elsewhere that kind is left out, and said so.

INTERLOCK_SKIP_SOAK=1 skips it; INTERLOCK_SOAK_SEED picks another plan (the default is fixed
so CI replays the same one); INTERLOCK_SOAK_MINUTES another length."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.soak_faults import Kind, plan
from tests.soak_run import DEFAULT_KINDS, SoakConfig, run_soak
from tests.soak_services import services_missing

MISSING = services_missing()
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.environ.get("INTERLOCK_SKIP_SOAK", "") not in ("", "0"),
                                 reason="INTERLOCK_SKIP_SOAK is set"),
              pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


MINUTES = float(os.environ.get("INTERLOCK_SOAK_MINUTES", "2"))
SEED = int(os.environ.get("INTERLOCK_SOAK_SEED", "18"))
ALL_KINDS = {k.value for k in Kind}


def test_the_plan_has_every_kind_of_fault() -> None:
    planned = plan(SEED, MINUTES * 60, DEFAULT_KINDS, 5.0)
    assert {f.kind.value for f in planned} == ALL_KINDS
    first_round = planned[:len(ALL_KINDS)]
    assert {f.kind.value for f in first_round} == ALL_KINDS
    assert first_round[-1].at_s < MINUTES * 60 - 5, "the first round does not fit the run"
    assert plan(SEED, MINUTES * 60, DEFAULT_KINDS, 5.0) == planned  # replayable


def test_two_minute_chaos_soak_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    report = run_soak(SoakConfig(minutes=MINUTES, seed=SEED, home=tmp_path / "soak"))
    print("\n" + report.text())
    assert report.ok, report.text()
    assert report.planned_kinds | set(report.left_out) == ALL_KINDS
    assert set(report.injected) == report.planned_kinds, report.text()
    assert report.recovered == report.injected, report.text()  # a probe after every fault
    if os.geteuid() == 0:  # CI: root, so the attempts disk was really filled
        assert not report.left_out, report.left_out
    else:
        assert set(report.left_out) <= {Kind.FILL_DISK.value}
        print(f"not root: {report.left_out or 'nothing'} left out")
