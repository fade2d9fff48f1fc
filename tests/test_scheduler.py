"""`schedule:` triggers: ticks on a controllable clock, catch-up after downtime, time zones,
concurrent schedulers, and two real `interlock scheduler` processes for three minutes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import select

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.store import audit
from interlock.store.db import dispose_all, session_scope
from interlock.store.tables import AuditRecord, Run, ScheduleCursor, TriggerFiring
from interlock.triggers import schedule as scheduler
from tests.helpers import wait_run

T0 = datetime(2026, 11, 24, 10, 2, 30, tzinfo=UTC)


def _flow(cron: str, *, catchup: str = "last", timezone: str = "UTC", flow_id: str = "nightly",
          inputs: str = "") -> str:
    return dedent(f"""
        id: {flow_id}
        namespace: tests.sched
        {inputs}
        triggers:
          - schedule: {{cron: "{cron}", timezone: {timezone}, catchup: {catchup}}}
        nodes:
          hello: {{uses: noop}}
    """).lstrip()


def _register(source: str) -> None:
    ops.register(source)


def _ticks(flow_id: str = "nightly") -> list[str]:
    with session_scope() as session:
        runs = session.scalars(select(Run).where(Run.flow_id == flow_id)
                               .order_by(Run.created_at))
        return [r.trigger["tick"] for r in runs]


def test_a_new_trigger_starts_from_now_and_fires_each_tick_once(store_url: str) -> None:
    _register(_flow("*/5 * * * *"))
    assert scheduler.tick(now=T0).fired == []           # cursor created: no backfill
    assert scheduler.tick(now=T0 + timedelta(minutes=2)).fired == []  # before 10:05
    fired = scheduler.tick(now=T0 + timedelta(minutes=2, seconds=31)).fired  # 10:05:01
    assert len(fired) == 1
    assert scheduler.tick(now=T0 + timedelta(minutes=2, seconds=40)).fired == []  # same tick
    assert _ticks() == ["2026-11-24T10:05:00+00:00"]
    run = ops.get_run(fired[0].run_id)
    assert run.trigger["type"] == "schedule" and run.trigger["cron"] == "*/5 * * * *"
    assert run.trigger["late_s"] == pytest.approx(1.0)


@pytest.mark.parametrize(("catchup", "expected"), [
    ("all", [f"2026-11-24T{h:02d}:{m:02d}:00+00:00"
             for h, m in [(10, 5), (10, 10), (10, 15), (10, 20), (10, 25), (10, 30)]]),
    ("last", ["2026-11-24T10:30:00+00:00"]),
    ("none", ["2026-11-24T10:30:00+00:00"]),  # only the tick within ON_TIME of now
])
def test_catch_up_after_downtime_follows_the_policy(store_url: str, catchup: str,
                                                    expected: list[str]) -> None:
    _register(_flow("*/5 * * * *", catchup=catchup))
    scheduler.tick(now=T0)
    # down from 10:02:30 to 10:30:20: six ticks were due
    result = scheduler.tick(now=datetime(2026, 11, 24, 10, 30, 20, tzinfo=UTC))
    assert _ticks() == expected
    assert result.skipped == 6 - len(expected)
    with session_scope() as session:
        skipped = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.SCHEDULE_SKIPPED.value)).all()
    assert [r.after["skipped"] for r in skipped] == ([6 - len(expected)] if result.skipped else [])


def test_none_skips_every_tick_missed_by_more_than_a_minute(store_url: str) -> None:
    _register(_flow("*/5 * * * *", catchup="none"))
    scheduler.tick(now=T0)
    result = scheduler.tick(now=datetime(2026, 11, 24, 10, 33, 0, tzinfo=UTC))
    assert _ticks() == [] and result.skipped == 6


def test_a_restarted_scheduler_neither_loses_nor_repeats_ticks(store_url: str) -> None:
    """The cursor is in the store: a new process (another `tick` caller) goes on from it."""
    _register(_flow("* * * * *", catchup="all"))
    scheduler.tick(now=T0)
    scheduler.tick(now=T0 + timedelta(seconds=40))      # 10:03 fired
    dispose_all()                                        # the "process" is gone
    scheduler.tick(now=T0 + timedelta(minutes=3, seconds=5))   # back at 10:05:35
    assert _ticks() == ["2026-11-24T10:03:00+00:00", "2026-11-24T10:04:00+00:00",
                        "2026-11-24T10:05:00+00:00"]


def test_ticks_follow_the_time_zone_across_daylight_saving(store_url: str) -> None:
    _register(_flow("0 9 * * *", timezone="Europe/Paris", catchup="all"))
    start = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    scheduler.tick(now=start)
    scheduler.tick(now=start + timedelta(days=3))
    # 09:00 in Paris is 08:00 UTC before the switch (March 29) and 07:00 UTC after it
    assert _ticks() == ["2026-03-28T08:00:00+00:00", "2026-03-29T07:00:00+00:00",
                        "2026-03-30T07:00:00+00:00"]


def test_required_inputs_refuse_the_tick_and_the_cursor_moves_on(store_url: str) -> None:
    _register(_flow("*/5 * * * *", inputs="inputs: {region: {type: string, required: true}}"))
    scheduler.tick(now=T0)
    scheduler.tick(now=T0 + timedelta(minutes=3))
    scheduler.tick(now=T0 + timedelta(minutes=4))
    assert _ticks() == []
    with session_scope() as session:
        refused = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_REFUSED.value)).all()
        cursor = session.scalars(select(ScheduleCursor)).one()
    assert len(refused) == 1 and "region" in str(refused[0].after["problems"])
    assert cursor.last_tick == datetime(2026, 11, 24, 10, 5, tzinfo=UTC)


def test_concurrent_schedulers_fire_each_tick_once(store_url: str) -> None:
    for n in range(5):
        _register(_flow("* * * * *", catchup="all", flow_id=f"f{n}"))
    scheduler.tick(now=T0)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def race() -> None:
        try:
            barrier.wait()
            scheduler.tick(now=T0 + timedelta(minutes=10))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(5):
        ticks = _ticks(f"f{n}")
        assert len(ticks) == 10 and len(set(ticks)) == 10


def test_a_fired_run_runs(store_url: str, embedded: EmbeddedDispatcher) -> None:
    _register(_flow("*/5 * * * *"))
    scheduler.tick(embedded, now=T0)
    (fired,) = scheduler.tick(embedded, now=T0 + timedelta(minutes=3)).fired
    assert wait_run(fired.run_id).state.value == "succeeded"


# --- two real scheduler processes ---------------------------------------------------------

FLOWS = 8
DURATION_S = 185.0


def _start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen([sys.executable, "-m", "interlock", "scheduler"], env=env,
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _minute_boundaries(after: datetime, until: datetime) -> list[datetime]:
    first = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return [first + timedelta(minutes=i)
            for i in range(int((until - first).total_seconds() // 60) + 1)]


def test_two_scheduler_processes_for_three_minutes_fire_every_tick_exactly_once(
        pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `interlock scheduler` processes on one PostgreSQL store, eight flows each on
    `* * * * *`; one scheduler is killed (SIGKILL) and restarted half way."""
    from tests.conftest import _use
    _use(monkeypatch, tmp_path, pg_schema_url)
    for n in range(FLOWS):
        _register(_flow("* * * * *", catchup="all", flow_id=f"p{n}"))
    env = {**os.environ, "INTERLOCK_HOME": str(tmp_path), "INTERLOCK_DATABASE_URL": pg_schema_url}
    env.pop("INTERLOCK_BROKER_URL", None)
    procs = [_start_scheduler(env, tmp_path / "a.log"), _start_scheduler(env, tmp_path / "b.log")]
    try:
        deadline = time.monotonic() + 60
        while True:  # both up and every trigger has its cursor
            with session_scope() as session:
                cursors = session.scalars(select(ScheduleCursor)).all()
            if len(cursors) == FLOWS:
                break
            assert time.monotonic() < deadline, (tmp_path / "a.log").read_text()
            time.sleep(0.2)
        started = min(c.last_tick for c in cursors)
        time.sleep(DURATION_S / 2)
        os.killpg(procs[0].pid, signal.SIGKILL)
        procs[0].wait()
        time.sleep(5)
        procs.append(_start_scheduler(env, tmp_path / "a2.log"))
        time.sleep(DURATION_S / 2)
        ended = datetime.now(UTC) - timedelta(seconds=3)  # ticks before this are surely fired
    finally:
        for proc in procs:
            _stop(proc)
    expected = {t.isoformat() for t in _minute_boundaries(started, ended)}
    assert len(expected) >= 3
    with session_scope() as session:
        runs = session.scalars(select(Run)).all()
        firings = session.scalars(select(TriggerFiring)).all()
        fired_audit = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_FIRED.value)).all()
    per_flow_tick = Counter((r.flow_id, r.trigger["tick"]) for r in runs)
    assert max(per_flow_tick.values()) == 1, "a tick fired twice"
    for n in range(FLOWS):
        fired = {tick for (flow, tick) in per_flow_tick if flow == f"p{n}"}
        assert expected <= fired, f"p{n} missed ticks {sorted(expected - fired)}"
        assert fired <= expected | {t.isoformat() for t in _minute_boundaries(
            ended, ended + timedelta(seconds=10))}
    assert len(firings) == len(runs) == len(fired_audit)
    assert {f.run_id for f in firings} == {r.id for r in runs}
