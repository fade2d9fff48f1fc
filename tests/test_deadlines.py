"""Cross-tool deadlines (`sla:`) on a controllable clock: due instants and estimates (pure),
a run going LATE (audited once, notified, shown by the API), `at_risk` raised before the
deadline from real history of script nodes, `after: {flow: X, state: late}` fired exactly
once with several ticks and two monitors, hostile `sla:` values located."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import select

from interlock.api.main import create_app
from interlock.cli.render import run_table
from interlock.deadlines.due import anchor_of, due_at, next_clock_time, zone_of
from interlock.deadlines.estimate import Progress, estimate, p90
from interlock.deadlines.monitor import check
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import runs as ops
from interlock.spec.graph import FlowGraph
from interlock.spec.loader import parse_flow
from interlock.store.db import session_scope
from interlock.store.runs import RunFilter
from interlock.store.tables import AuditRecord, Deadline, Notification
from tests.helpers import bearer, pending_run, wait_run
from tests.test_notify import SECRET, configure, json_hook

NS = "tests.sla"
T = datetime(2026, 11, 24, 5, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_background_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler's own monitor reads the real clock: it would race the controlled one."""
    monkeypatch.setenv("INTERLOCK_DEADLINES_SECONDS", "0")


@pytest.fixture
def quiet(store_url: str) -> Any:
    """The embedded dispatcher without periodic jobs, never sending work: runs made by
    `pending_run` stay pending."""
    class Quiet(EmbeddedDispatcher):
        def send(self, *_: Any, **__: Any) -> None:
            pass
    dispatcher = Quiet()
    yield dispatcher
    dispatcher.close()


def _flow(text: str) -> Any:
    return parse_flow(dedent(text).lstrip())


# --------------------------------------------------------------------------------------------
# pure: due instants and estimates


def test_a_deadline_is_the_first_clock_time_at_or_after_the_tick_in_its_timezone() -> None:
    flow = _flow("""
        id: nightly
        triggers: [{schedule: {cron: "0 4 * * *", timezone: Europe/Paris}}]
        sla: {deadline: "06:30", max_duration: 3h}
        nodes: {a: {uses: noop}}
    """)
    assert flow.sla is not None and zone_of(flow, flow.sla) == "Europe/Paris"
    tick = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 04:00 in Paris (UTC+1 in November)
    anchor = anchor_of({"type": "schedule", "tick": tick.isoformat()}, tick + timedelta(hours=2))
    assert anchor == tick  # the tick, not the (late) creation
    # 06:30 Paris = 05:30 UTC, earlier than creation + 3h
    assert due_at(flow, flow.sla, started=tick, anchor=anchor) == tick.replace(hour=5, minute=30)
    # after the clock time: the next day's
    assert next_clock_time("06:30", "Europe/Paris", tick.replace(hour=6)) == \
        datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
    # summer time moves it: 06:30 Paris is 04:30 UTC in July
    assert next_clock_time("06:30", "Europe/Paris", datetime(2026, 7, 1, tzinfo=UTC)) == \
        datetime(2026, 7, 1, 4, 30, tzinfo=UTC)
    unscheduled = _flow("id: f\nsla: {deadline: '06:30'}\nnodes: {a: {uses: noop}}\n")
    assert unscheduled.sla is not None and zone_of(unscheduled, unscheduled.sla) == "UTC"
    assert anchor_of({"type": "manual"}, T) == T
    only_duration = _flow("id: f\nnodes: {a: {uses: noop, sla: {max_duration: 10m}}}\n")
    sla = only_duration.nodes["a"].sla
    assert sla is not None and due_at(only_duration, sla, started=None, anchor=T) is None
    assert due_at(only_duration, sla, started=T, anchor=T) == T + timedelta(minutes=10)


def test_the_estimate_follows_the_longest_remaining_path_and_names_its_cause() -> None:
    flow = _flow("""
        id: f
        nodes:
          extract: {uses: noop}
          transform: {uses: noop, needs: [extract]}
          side: {uses: noop, needs: [extract]}
          load: {uses: noop, needs: [transform, side]}
    """)
    graph = FlowGraph(flow)
    costs = {"extract": 60.0, "transform": 600.0, "side": 100.0, "load": 30.0}
    # extract done, transform running for 100 s of its 600, side and load not started
    progress = {"extract": Progress(done=True), "transform": Progress(since=T),
                "side": Progress(), "load": Progress()}
    now = T + timedelta(seconds=100)
    est = estimate(graph, progress, costs, now)
    assert (est.remaining_s, est.cause, est.unknown) == (530.0, "transform", ())
    assert est.finish == now + timedelta(seconds=530)
    # a node's own finish: its path only
    assert estimate(graph, progress, costs, now, target="side").remaining_s == 100.0
    # no history: costs nothing, and the estimate says so
    est = estimate(graph, progress, {**costs, "load": None}, now)
    assert est.remaining_s == 500.0 and est.unknown == ("load",)
    # overrunning its p90: nothing left of it, not a negative cost
    late = estimate(graph, progress, costs, T + timedelta(seconds=900))
    assert late.remaining_s == 130.0 and late.cause == "side"
    assert p90([]) is None and p90([5.0]) == 5.0
    assert p90([float(n) for n in range(1, 11)]) == 9.0


# --------------------------------------------------------------------------------------------
# hostile input


@pytest.mark.parametrize(("sla", "words"), [
    ("{deadline: '25:00'}", "bad deadline '25:00'"),
    ("{deadline: '6h30'}", "HH:MM"),
    ("{deadline: '06:30', timezone: Mars/Olympus}", "unknown timezone 'Mars/Olympus'"),
    ("{max_duration: -5m}", "bad duration"),
    ("{max_duration: 0s}", "longer than 0s"),
    ("{}", "needs `max_duration:`"),
    ("{deadline: '06:30', grace: 5m}", "grace"),
])
def test_hostile_sla_values_are_located(sla: str, words: str) -> None:
    text = f"id: f\nnodes:\n  a:\n    uses: noop\n    sla: {sla}\n"
    with pytest.raises(SpecError) as node_level:
        parse_flow(text, file="flow.yaml")
    with pytest.raises(SpecError) as flow_level:
        parse_flow(f"id: f\nsla: {sla}\nnodes: {{a: {{uses: noop}}}}\n", file="flow.yaml")
    for raised, line in ((node_level, 5), (flow_level, 2)):
        (problem,) = raised.value.problems
        assert problem.file == "flow.yaml" and problem.line == line, problem
        assert words in problem.message and "sla" in problem.message, problem


# --------------------------------------------------------------------------------------------
# LATE, notified, audited once, in the API view


def _register(text: str) -> None:
    ops.register(dedent(text).lstrip(), actor="user:author")


def _audit(action: str) -> list[AuditRecord]:
    with session_scope() as session:
        return list(session.scalars(select(AuditRecord).where(AuditRecord.action == action)
                                    .order_by(AuditRecord.seq)))


def _rows(run_id: str) -> dict[str, Deadline]:
    with session_scope() as session:
        rows = session.scalars(select(Deadline).where(Deadline.run_id == run_id)).all()
        session.expunge_all()
    return {r.node_id: r for r in rows}


def _tick(now: datetime) -> list[tuple[str, str, str]]:
    with session_scope() as session:
        found, _ = check(session, now)
    return [(f.run_id, f.node_id, f.kind) for f in found]


def _created(run_id: str) -> datetime:
    return ops.get_run(run_id).created_at


def test_a_run_goes_late_once_and_is_notified_and_shown(
        quiet: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SECRET", SECRET)
    configure(tmp_path, monkeypatch, json_hook("http://127.0.0.1:9/hook",
                                               events=["deadline.late"]))
    _register(f"""
        id: report
        namespace: {NS}
        sla: {{max_duration: 30m}}
        nodes:
          build: {{uses: noop, sla: {{max_duration: 5m}}}}
    """)
    run_id = pending_run(NS, "report")
    created = _created(run_id)
    assert _tick(created + timedelta(minutes=29)) == []  # not due yet: nothing flagged
    rows = _rows(run_id)
    assert set(rows) == {"", "build"}
    assert rows[""].due_at == created + timedelta(minutes=30) and rows[""].state == "watching"
    assert rows["build"].due_at is None  # not started: its clock has not begun

    assert _tick(created + timedelta(minutes=31)) == [(run_id, "", "late")]
    for minutes in (32, 40, 90):  # later ticks change nothing
        assert _tick(created + timedelta(minutes=minutes)) == []
    (late,) = _audit("run.late")
    assert late.target == f"runs/{run_id}"
    assert late.after["flow"] == f"{NS}/report" and late.after["late_by_s"] == 60.0
    assert late.after["finished"] is False
    with session_scope() as session:
        sent = session.scalars(select(Notification)).all()
        assert [(n.event, n.payload["run"], n.payload["flag"]) for n in sent] == [
            ("deadline.late", run_id, "late")]

    client = TestClient(create_app())
    view = client.get(f"/api/v1/runs/{run_id}", headers=bearer()).json()
    assert [(d["node"], d["state"], d["at_risk"]) for d in view["deadlines"]] == [
        (None, "late", False), ("build", "watching", False)]
    assert datetime.fromisoformat(view["deadlines"][0]["due_at"]) == \
        created + timedelta(minutes=30)
    console = Console(width=200, record=True)
    console.print(run_table(ops.get_run(run_id)))
    shown = console.export_text()
    assert "deadline (run): LATE, due" in shown and "deadline (build): watching" in shown


# --------------------------------------------------------------------------------------------
# at_risk from real history


HISTORY_FLOW = """
    id: etl
    namespace: {ns}
    {sla}
    nodes:
      first: {{uses: script, with: {{command: "sleep 0.2"}}}}
      slow: {{uses: script, needs: [first], with: {{command: "sleep 1.2"}}}}
      quick: {{uses: script, with: {{command: "sleep 0.1"}}}}
"""


def _wait_running(run_id: str, node: str) -> None:
    """Until ``node`` has started (running, or already past it: a short node may finish
    between two looks; the estimate holds either way)."""
    deadline = time.monotonic() + 30
    while next(n for n in ops.get_run(run_id).nodes
               if n.id == node).state.value in ("pending", "queued"):
        assert time.monotonic() < deadline, ops.get_run(run_id)
        time.sleep(0.02)


def test_at_risk_is_raised_before_the_deadline_from_history(embedded: EmbeddedDispatcher) -> None:
    _register(HISTORY_FLOW.format(ns=NS, sla="sla: {max_duration: 1h}"))
    for _ in range(2):  # history: first ~0.2 s then slow ~1.2 s
        run_id = ops.start_run(namespace=NS, flow_id="etl", inputs={}, dispatcher=embedded)
        assert wait_run(run_id).state.value == "succeeded"
    first_runs = [r.id for r in ops.list_runs(filters=RunFilter(flow_id="etl")).runs]
    assert _tick(datetime.now(UTC)) == []  # both met their hour
    assert {_rows(r)[""].state for r in first_runs} == {"met"}

    _register(HISTORY_FLOW.format(ns=NS, sla="sla: {max_duration: 1s}"))
    run_id = ops.start_run(namespace=NS, flow_id="etl", inputs={}, dispatcher=embedded)
    _wait_running(run_id, "first")
    created = _created(run_id)
    now = created + timedelta(milliseconds=100)  # the deadline (created + 1 s) is ahead
    assert _tick(now) == [(run_id, "", "at_risk")]
    row = _rows(run_id)[""]
    assert row.state == "watching" and row.cause_node == "slow"
    assert row.at_risk_at == now < row.due_at == created + timedelta(seconds=1)
    assert row.estimate_at is not None and row.estimate_at > row.due_at
    (risk,) = _audit("run.at_risk")
    assert risk.after["cause"] == "slow" and risk.after["no_history"] == []
    assert _tick(now + timedelta(milliseconds=10)) == []  # raised once

    assert wait_run(run_id).state.value == "succeeded"  # it took longer than 1 s: LATE
    assert _tick(datetime.now(UTC)) == [(run_id, "", "late")]
    (late,) = _audit("run.late")
    assert late.after["finished"] is True and late.after["run_state"] == "succeeded"


# --------------------------------------------------------------------------------------------
# after: {flow: X, state: late}


def _runs_of(flow_id: str) -> list[str]:
    return [r.id for r in ops.list_runs(filters=RunFilter(flow_id=flow_id)).runs]


def test_after_late_fires_once_with_many_ticks_and_two_monitors(
        quiet: EmbeddedDispatcher) -> None:
    _register(f"""
        id: upstream
        namespace: {NS}
        sla: {{max_duration: 10m}}
        nodes: {{a: {{uses: noop}}}}
    """)
    for flow_id, state in (("on-late", "late"), ("on-success", "success"), ("on-any", "any")):
        _register(f"""
            id: {flow_id}
            namespace: {NS}
            triggers: [{{after: {{flow: upstream, state: {state}}}}}]
            nodes: {{b: {{uses: noop}}}}
        """)
    run_id = pending_run(NS, "upstream")
    created = _created(run_id)
    assert _tick(created + timedelta(minutes=5)) == []
    assert _runs_of("on-late") == []

    later = created + timedelta(minutes=11)
    errors: list[BaseException] = []

    def monitor() -> None:
        try:
            for _ in range(3):
                _tick(later)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    monitors = [threading.Thread(target=monitor) for _ in range(2)]
    for m in monitors:
        m.start()
    for m in monitors:
        m.join(60)
    assert errors == []
    (fired,) = _runs_of("on-late")
    assert _runs_of("on-success") == _runs_of("on-any") == []  # a flag, not a finish
    trigger = ops.get_run(fired).trigger
    assert (trigger["state"], trigger["job_id"], trigger["external_id"]) == (
        "late", f"{NS}/upstream", f"late@{run_id}")
    assert len(_audit("run.late")) == 1
    assert len([r for r in _audit("trigger.fired") if r.target == f"{NS}/on-late"]) == 1
