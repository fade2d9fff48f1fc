"""LATE and MISSED cron runs on a controllable clock: `cron_checks.check(now=...)` against
runs reported through the real intake path, the `after:` triggers they fire, the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent

import pytest
from cron_setup import SYSTEM, install_host
from fastapi.testclient import TestClient
from helpers import bearer
from interlock_cron.events import parse_report
from sqlalchemy import select

from interlock.api.main import create_app
from interlock.config.cron_jobs import CronJob, load_cron_jobs
from interlock.cron.checks import CheckStatus, check, status_of
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.events import intake
from interlock.operations import runs as ops
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.runs import RunFilter
from interlock.store.tables import AuditRecord, CronCheck

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # `report` runs every 10 min from here


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


@pytest.fixture(autouse=True)
def _no_background_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler's own monitor reads the real clock: it would race the controlled one."""
    monkeypatch.setenv("INTERLOCK_CRON_CHECK_SECONDS", "0")


@pytest.fixture
def jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedded: EmbeddedDispatcher) -> list:
    install_host(tmp_path, monkeypatch)
    return [j for by_id in load_cron_jobs().values() for j in by_id.values()]


def _report(run: str, minutes: float, embedded: EmbeddedDispatcher) -> None:
    """A start reported by `interlock cron exec`, through the same path as a push."""
    event = parse_report({"system": SYSTEM, "job": "report", "run": run, "event": "start",
                          "started_at": at(minutes).isoformat()})
    intake.apply("cron", event, dispatcher=embedded, origin="test")


def _check(minutes: float, jobs: list) -> list[tuple[str, str, str]]:
    with session_scope() as session:
        changes, _ = check(session, at(minutes), jobs)
    return [(c.due_at.strftime("%H:%M"), c.before.value, c.after.value) for c in changes]


def _statuses() -> dict[str, str]:
    with session_scope() as session:
        rows = session.scalars(select(CronCheck).order_by(CronCheck.due_at)).all()
    return {r.due_at.strftime("%H:%M"): r.status for r in rows}


def test_status_rules() -> None:
    job = CronJob(system=SYSTEM, id="j", schedule="*/10 * * * *", timezone="UTC",
                  command="true", source="-", grace_s=120, missed_after_s=360)
    assert status_of(job, T, at(1), None) is CheckStatus.EXPECTED
    assert status_of(job, T, at(2), None) is CheckStatus.LATE
    assert status_of(job, T, at(6), None) is CheckStatus.MISSED
    assert status_of(job, T, at(9), at(1.5)) is CheckStatus.ON_TIME
    assert status_of(job, T, at(9), at(3)) is CheckStatus.RAN_LATE
    daily = CronJob(system=SYSTEM, id="d", schedule="@daily", timezone="UTC", command="true",
                    source="-")
    # without `missed_after`, a run is missed when the next one is due
    midnight = T.replace(hour=0)
    assert status_of(daily, midnight, midnight + timedelta(hours=23), None) is CheckStatus.LATE
    assert status_of(daily, midnight, midnight + timedelta(hours=24), None) \
        is CheckStatus.MISSED


def test_on_time_late_missed_and_ran_late_on_a_controlled_clock(
        jobs: list, embedded: EmbeddedDispatcher) -> None:
    assert _check(0.5, jobs) == []                 # 10:00 expected, within grace
    assert _statuses() == {"10:00": "expected"}
    _report("r1", 1, embedded)                      # started at 10:01
    assert _check(1.2, jobs) == [("10:00", "expected", "on_time")]
    assert _check(12.5, jobs) == [("10:10", "expected", "late")]   # nothing by 10:12
    assert _check(14, jobs) == []
    assert _check(16.5, jobs) == [("10:10", "late", "missed")]     # nothing by 10:16
    assert _check(22.5, jobs) == [("10:20", "expected", "late")]
    _report("r3", 24, embedded)                     # 10:24: late, but it came
    assert _check(24.2, jobs) == [("10:20", "late", "ran_late")]
    assert _statuses() == {"10:00": "on_time", "10:10": "missed", "10:20": "ran_late"}
    with session_scope() as session:
        rows = session.scalars(select(CronCheck).order_by(CronCheck.due_at)).all()
        audited = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.CRON_CHECK.value)).all()
    assert [r.external_id for r in rows] == ["r1", None, "r3"]
    assert [r.after["status"] for r in audited] == ["on_time", "late", "missed", "late",
                                                    "ran_late"]
    # monitoring starts at `monitor_from`; unmonitored and @reboot jobs get no checks
    assert {(r.job_id) for r in rows} == {"report"}


def test_a_missed_run_fires_the_flow_waiting_for_it_once(jobs: list,
                                                         embedded: EmbeddedDispatcher) -> None:
    ops.register(dedent(f"""
        id: page-oncall
        namespace: tests.cron
        triggers:
          - after: {{system: {SYSTEM}, job: report, state: missed}}
        nodes:
          page: {{uses: noop}}
    """).lstrip())
    _report("r1", 1, embedded)
    _check(1.5, jobs)
    with session_scope() as session:
        _, fired = check(session, at(17), jobs)     # 10:10 missed
    assert len(fired) == 1
    with session_scope() as session:
        assert check(session, at(17.5), jobs)[1] == []   # and never again
    runs = ops.list_runs(filters=RunFilter(flow_id="page-oncall")).runs
    assert len(runs) == 1
    trigger = ops.get_run(runs[0].id).trigger
    assert trigger["state"] == "missed" and trigger["external_id"].startswith("missed@")


def test_the_api_shows_each_jobs_status_and_checks(jobs: list,
                                                   embedded: EmbeddedDispatcher) -> None:
    _report("r1", 1, embedded)
    _check(1.5, jobs)
    _check(16.5, jobs)
    client = TestClient(create_app(dispatcher=embedded))
    client.headers.update(bearer())
    with client:
        listed = client.get("/api/v1/cron/jobs").json()
        missed = client.get("/api/v1/cron/jobs", params={"status": "missed"}).json()
        checks = client.get("/api/v1/cron/jobs/testhost/report/checks").json()
        unknown = client.get("/api/v1/cron/jobs/testhost/nope/checks")
    by_job = {j["job"]: j for j in listed}
    assert set(by_job) == {"report", "fail", "boot"}
    assert by_job["report"]["status"] == "missed"
    assert by_job["report"]["last_run"]["run"] == "r1"
    assert by_job["boot"]["monitored"] is False and by_job["boot"]["next_due"] is None
    assert [j["job"] for j in missed] == ["report"]
    assert [(c["due_at"][11:16], c["status"]) for c in checks] == [("10:10", "missed"),
                                                                  ("10:00", "on_time")]
    assert unknown.status_code == 404 and "no job `nope`" in unknown.json()["detail"]


def test_a_node_waiting_for_the_next_run_fails_when_it_is_missed(
        jobs: list, embedded: EmbeddedDispatcher) -> None:
    from airflow_flows import start, wait_node

    from tests.helpers import wait_run
    run_id = start("""
        id: waits
        namespace: tests.cron
        nodes:
          nightly: {uses: cron, with: {system: cron/testhost, job: report, wait: next}}
    """, embedded)
    wait_node(run_id, "nightly", "running", timeout=10)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # the first expected run after the node started (monitoring starts at T)
    due = T if now < T else now + timedelta(minutes=10 - now.minute % 10)
    with session_scope() as session:
        check(session, due + timedelta(minutes=7), jobs)
    detail = wait_run(run_id, timeout=30)
    node = detail.nodes[0]
    assert node.state.value == "failed"
    assert f"missed its run due at {due.isoformat()}" in node.error
