"""Dashboards and /metrics on both stores: filters, pages, rates, percentiles, health, metrics.

Real runs (embedded dispatch: `noop`, `script` and a scripted adapter on a registered
system) check what touches which system; rows written with controlled timestamps check
windows, pages and exact numbers.
"""

from __future__ import annotations

import base64
import json
import random
import statistics
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

with warnings.catch_warnings():
    # Starlette's TestClient warns about its httpx use on import (see tests/test_api.py).
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock import __version__, clock
from interlock.adapters import signing
from interlock.adapters.contract import Handle, JobSpec, Observation
from interlock.api.main import create_app
from interlock.dashboards import metrics
from interlock.dashboards.percentiles import distributions, percentile_cont
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import runs as ops
from interlock.states import NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.flows import get_revision
from interlock.store.outbox import PollBatch, Work
from interlock.store.tables import (
    Attempt,
    AuditHead,
    AuditRecord,
    CronCheck,
    ExternalRun,
    Outbox,
    Run,
    StateEvent,
)
from interlock.testing import ScriptedAdapter, Step
from tests.helpers import wait_run

API = "/api/v1/dashboards"
NS = "tests.dash"
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)  # well in the past: polls of it are overdue
SYSTEM = "scripted/prod"
# The embedded dispatcher's reconciler reads the audit logs of registered Airflow and Dagster
# systems: live tests register none, only systems that nothing calls.
LIVE_SYSTEMS = """
systems:
  scripted/prod: {url: "http://scripted.invalid"}
  cron/idle: {}
"""
SYSTEMS = LIVE_SYSTEMS + """  airflow/prod: {url: "http://airflow.invalid"}
  dagster/idle: {url: "http://dagster.invalid"}
"""


def flow(flow_id: str, nodes: str, namespace: str = NS) -> str:
    return f"id: {flow_id}\nnamespace: {namespace}\nnodes:\n{nodes}"


NOOP = flow("noop", "  a: {uses: noop, with: {v: 1}}\n  b: {uses: noop, needs: [a]}\n")
SCRIPT = flow("script", "  s: {uses: script, with: {command: 'true'}}\n")
REMOTE = flow("remote", "  ok: {uses: scripted}\n  gone: {uses: scripted}\n")
HELD = flow("held", "  wait: {uses: scripted}\n")


class IdleDispatcher:
    """Sends nothing: rows written by the tests stay exactly as written."""

    def send(self, work: Work, *, countdown: float = 0.0) -> None:
        pass

    def send_polls(self, batch: PollBatch) -> None:
        pass


class RemoteAdapter(ScriptedAdapter):
    """The scripted adapter with its jobs on a registered system, as Airflow's are."""

    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        return _on_system(super().submit(job, key=key))

    def poll(self, handles: Any) -> list[Observation]:
        return [_on_system(o) for o in super().poll(handles)]


def _on_system(result: Any) -> Any:
    if isinstance(result, Handle):
        return replace(result, system=SYSTEM)
    return replace(result, handle=replace(result.handle, system=SYSTEM))


def use_systems(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "systems.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))


@pytest.fixture
def live(embedded: EmbeddedDispatcher, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API over the embedded dispatcher, for real runs."""
    use_systems(LIVE_SYSTEMS, tmp_path, monkeypatch)
    with TestClient(create_app(embedded), raise_server_exceptions=False) as c:
        c.headers.update(bearer())
        yield c


@pytest.fixture
def client(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API over a dispatcher that sends nothing, for rows written by the tests."""
    use_systems(SYSTEMS, tmp_path, monkeypatch)
    with TestClient(create_app(IdleDispatcher()), raise_server_exceptions=False) as c:
        c.headers.update(bearer())
        yield c


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def start(source: str, dispatcher: EmbeddedDispatcher) -> str:
    f, _ = ops.register(source)
    return ops.start_run(namespace=f.namespace, flow_id=f.id, inputs={}, dispatcher=dispatcher)


# --- rows with controlled timestamps ---------------------------------------------------------


def register(source: str) -> int:
    f, _ = ops.register(source)
    with session_scope() as session:
        return get_revision(session, namespace=f.namespace, flow_id=f.id).id


def add_run(revision: int, flow_id: str, run_id: str, state: RunState, created: datetime,
            seconds: float | None = None, namespace: str = NS) -> None:
    finished = created + timedelta(seconds=seconds) if seconds is not None else None
    with session_scope() as session:
        session.add(Run(id=run_id, flow_revision_id=revision, namespace=namespace,
                        flow_id=flow_id, revision=1, state=state.value, inputs={},
                        trigger={"type": "test"}, trace_id="0" * 32, created_at=created,
                        updated_at=created, finished_at=finished))
        if finished is not None:
            session.add(StateEvent(run_id=run_id, entity="run", from_state="running",
                                   to_state=state.value, actor="test", at=finished))


def add_attempt(run_id: str, number: int, state: NodeState, created: datetime, *,
                uses: str = "airflow", system: str | None = "airflow/prod",
                queued_s: float | None = None, ran_s: float | None = None,
                submit_tries: int = 1, next_poll_at: datetime | None = None,
                poll_interval: float | None = None) -> None:
    submitted = created + timedelta(seconds=queued_s) if queued_s is not None else None
    finished = (submitted or created) + timedelta(seconds=ran_s) if ran_s is not None else None
    handle = {"kind": uses, "external_id": f"x{number}", "system": system} if submitted else None
    with session_scope() as session:
        session.add(Attempt(run_id=run_id, node_id="n", number=number, key=f"{run_id}.n.{number}",
                            uses=uses, state=state.value, params={"system": system} if system
                            else {}, handle=handle, outputs={}, submit_tries=submit_tries,
                            created_at=created, submitted_at=submitted, finished_at=finished,
                            next_poll_at=next_poll_at, poll_interval=poll_interval))


def pages(client: TestClient, path: str, key: str, **params: Any) -> list[list[Any]]:
    """Every page of a listing, following `next_cursor`."""
    found, cursor = [], None
    while True:
        body = ok(client.get(f"{API}/{path}", params={**params, **({"cursor": cursor}
                                                                   if cursor else {})}))
        found.append(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return found


# --- runs ------------------------------------------------------------------------------------


def test_runs_by_system_state_and_flow_from_real_runs(live: TestClient,
                                                      embedded: EmbeddedDispatcher) -> None:
    noop = [wait_run(start(NOOP, embedded)).id for _ in range(2)]
    script = wait_run(start(SCRIPT, embedded)).id
    adapter = RemoteAdapter({"ok": [Step.transient("503"), Step.running(), Step.succeeded()],
                             "gone": [Step.running(), Step.lost()]})
    with adapter.installed():
        remote = wait_run(start(REMOTE, embedded))
    assert remote.state is RunState.FAILED

    def ids(**params: Any) -> list[str]:
        return [r["id"] for r in ok(live.get(f"{API}/runs", params=params))["runs"]]

    assert ids(system=SYSTEM) == [remote.id]
    assert ids(system="noop") == noop[::-1]          # newest first
    assert ids(system="script") == [script]
    assert ids(system="airflow/prod") == []
    assert ids(state="failed") == [remote.id]
    assert ids(flow_id="noop", state="succeeded") == noop[::-1]
    assert ids(namespace="elsewhere") == []
    item = ok(live.get(f"{API}/runs", params={"system": SYSTEM}))["runs"][0]
    assert (item["systems"], item["attempts"], item["state"]) == ([SYSTEM], 2, "failed")
    assert item["duration_s"] == pytest.approx(
        (remote.finished_at - remote.created_at).total_seconds())  # type: ignore[operator]

    report = {s["system"]: s for s in ok(live.get(f"{API}/systems"))["systems"]}
    assert {"noop", "script", SYSTEM, "cron/idle"} <= set(report)
    on = report[SYSTEM]
    assert (on["kind"], on["registered"]) == ("scripted", True)
    assert on["attempts"] == {"succeeded": 1, "lost": 1}
    assert on["success_rate"] == 0.5
    assert on["run_latency"]["count"] == 2 and on["queue_latency"]["count"] == 2
    health = on["health"]
    assert (health["status"], health["lost"], health["retried_submits"]) == ("degraded", 1, 1)
    assert len(health["reasons"]) == 2
    assert report["noop"]["attempts"] == {"succeeded": 4}
    assert report["noop"]["registered"] is False
    assert report["noop"]["run_latency"]["count"] == 0   # noop finishes within its submit
    assert report["script"]["health"]["status"] == "ok"
    assert report["cron/idle"]["health"]["status"] == "unknown"
    assert report["cron/idle"]["attempts"] == {}


def test_runs_window_and_pages_without_gaps_or_repeats(client: TestClient) -> None:
    revision = register(NOOP)
    # 5 groups of 5 runs with the same created_at: the id breaks the ties
    for i in range(25):
        add_run(revision, "noop", f"r{i:02d}", RunState.SUCCEEDED, T0 + timedelta(minutes=i // 5),
                seconds=1)
    expected = [f"r{i:02d}" for i in sorted(range(25), key=lambda i: (i // 5, i), reverse=True)]
    got = pages(client, "runs", "runs", limit=7)
    assert [len(p) for p in got] == [7, 7, 7, 4]
    assert [r["id"] for p in got for r in p] == expected

    # new runs arriving between pages do not shift the later ones
    first = ok(client.get(f"{API}/runs", params={"limit": 10}))
    for i in range(3):
        add_run(revision, "noop", f"new{i}", RunState.RUNNING, T0 + timedelta(hours=1))
    rest = pages(client, "runs", "runs", limit=10, cursor=first["next_cursor"])
    assert [r["id"] for r in first["runs"]] + [r["id"] for p in rest for r in p] == expected

    window = {"since": (T0 + timedelta(minutes=1)).isoformat(),
              "until": (T0 + timedelta(minutes=3)).isoformat()}
    runs = ok(client.get(f"{API}/runs", params={**window, "limit": 500}))
    assert sorted(r["id"] for r in runs["runs"]) == [f"r{i:02d}" for i in range(5, 15)]
    assert runs["window"]["since"].startswith("2025-01-06T08:01:00")


# --- flows -----------------------------------------------------------------------------------


def test_flow_success_rate_percentiles_and_pages(client: TestClient) -> None:
    alpha, beta = register(flow("alpha", "  a: {uses: noop}\n")), register(
        flow("beta", "  a: {uses: noop}\n"))
    register(flow("gamma", "  a: {uses: noop}\n"))
    register(flow("delta", "  a: {uses: noop}\n", namespace="tests.other"))
    for i, (state, seconds) in enumerate([(RunState.SUCCEEDED, 1), (RunState.SUCCEEDED, 2),
                                          (RunState.FAILED, 10), (RunState.SUCCEEDED, 4),
                                          (RunState.SUCCEEDED, 3)]):
        add_run(alpha, "alpha", f"a{i}", state, T0 + timedelta(minutes=i), seconds)
    add_run(alpha, "alpha", "a-running", RunState.RUNNING, T0 + timedelta(minutes=30))
    add_run(alpha, "alpha", "a-before", RunState.FAILED, T0 - timedelta(hours=1), 100)
    add_run(alpha, "alpha", "a-after", RunState.FAILED, T0 + timedelta(hours=2), 100)
    add_run(beta, "beta", "b0", RunState.CANCELLED, T0, 5)
    add_run(beta, "beta", "b1", RunState.SUCCEEDED, T0 + timedelta(minutes=1), 7)
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}

    got = pages(client, "flows", "flows", namespace=NS, limit=2, **window)
    assert [[f["flow_id"] for f in p] for p in got] == [["alpha", "beta"], ["gamma"]]
    by_id = {f["flow_id"]: f for p in got for f in p}
    a = by_id["alpha"]
    assert a["runs"] == {"succeeded": 4, "failed": 1, "running": 1} and a["total"] == 6
    assert a["success_rate"] == 0.8
    # durations 1, 2, 3, 4, 10 s: PostgreSQL's percentile_cont (linear interpolation)
    assert a["duration"] == {"count": 5, "p50": 3.0, "p95": pytest.approx(8.8),
                             "p99": pytest.approx(9.76)}
    assert a["last_run"]["id"] == "a-running"  # newest before `until`, not after it
    b = by_id["beta"]
    assert (b["success_rate"], b["duration"]["p50"]) == (0.5, 6.0)
    assert b["last_run"]["state"] == "succeeded"
    g = by_id["gamma"]
    assert (g["total"], g["success_rate"], g["last_run"], g["duration"]["count"]) == (
        0, None, None, 0)
    everything = [f["flow_id"] for p in pages(client, "flows", "flows", **window) for f in p]
    assert everything == ["alpha", "beta", "gamma", "delta"]


# --- systems ---------------------------------------------------------------------------------


def test_system_latency_health_and_window(client: TestClient) -> None:
    revision = register(NOOP)
    add_run(revision, "noop", "run", RunState.RUNNING, T0 - timedelta(hours=2))
    at = T0 + timedelta(minutes=5)
    for number, (state, queued, ran, tries) in enumerate([
            (NodeState.SUCCEEDED, 0.5, 1, 1), (NodeState.SUCCEEDED, 0.5, 2, 2),
            (NodeState.SUCCEEDED, 1, 3, 1), (NodeState.FAILED, 1, 4, 1),
            (NodeState.LOST, 2, 10, 1)], start=1):
        add_attempt("run", number, state, at, queued_s=queued, ran_s=ran, submit_tries=tries)
    add_attempt("run", 6, NodeState.FAILED, at, ran_s=0)               # refused at submit
    add_attempt("run", 7, NodeState.RUNNING, at, queued_s=1, next_poll_at=T0)  # nobody polls
    add_attempt("run", 8, NodeState.SUCCEEDED, T0 - timedelta(hours=1), queued_s=1, ran_s=1)
    add_attempt("run", 9, NodeState.SUCCEEDED, at, uses="script", system=None, queued_s=0,
                ran_s=2)
    seen = T0 + timedelta(minutes=50)
    with session_scope() as session:
        session.add(ExternalRun(system="airflow/prod", job_id="dag", external_id="e1",
                                state="succeeded", remote_status="success", details={},
                                updated_at=seen))
    window = {"since": T0.isoformat(), "until": (T0 + timedelta(hours=1)).isoformat()}
    report = {s["system"]: s for s in ok(client.get(f"{API}/systems", params=window))["systems"]}

    assert {"airflow/prod", "dagster/idle", "script"} <= set(report)
    prod = report["airflow/prod"]
    assert prod["attempts"] == {"succeeded": 3, "failed": 2, "lost": 1, "running": 1}
    assert prod["success_rate"] == 0.5
    assert prod["run_latency"] == {"count": 5, "p50": 3.0, "p95": pytest.approx(8.8),
                                   "p99": pytest.approx(9.76)}
    assert prod["queue_latency"] == {"count": 6, "p50": 1.0, "p95": pytest.approx(1.75),
                                     "p99": pytest.approx(1.95)}
    assert datetime.fromisoformat(prod["last_seen"]) == seen
    health = prod["health"]
    assert health == {"status": "degraded", "reasons": health["reasons"], "in_flight": 1,
                      "overdue_polls": 1, "lost": 1, "lost_share": pytest.approx(1 / 6),
                      "retried_submits": 1, "retried_share": pytest.approx(1 / 7)}
    assert len(health["reasons"]) == 3
    assert report["script"]["registered"] is False
    assert report["script"]["run_latency"]["p50"] == 2.0
    assert report["dagster/idle"]["health"]["status"] == "unknown"


CRON_SECRET_ENV = "DASHBOARDS_CRON_SECRET"
PUSHING = SYSTEMS + f"  cron/db1: {{events_secret: {{env: {CRON_SECRET_ENV}}}}}\n"


def push_cron(client: TestClient, secret: str, **report: Any) -> httpx.Response:
    """What `interlock cron exec` posts, signed with ``secret``."""
    body = json.dumps({"system": "cron/db1", "job": "backup", **report}).encode()
    return client.post("/api/v1/events/cron", content=body, headers={
        "Content-Type": "application/json", **signing.sign(secret, body)})


def test_push_or_poll_per_system(client: TestClient, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "dashboards-cron-secret-" + uuid.uuid4().hex
    use_systems(PUSHING, tmp_path, monkeypatch)
    monkeypatch.setenv(CRON_SECRET_ENV, secret)
    # cron/db1 pushes one job run's start and finish; a forged push is refused, not counted.
    run, started = str(uuid.uuid4()), clock.now() - timedelta(seconds=5)
    ok(push_cron(client, secret, run=run, event="start", started_at=started.isoformat()), 202)
    ok(push_cron(client, secret, run=run, event="finish", started_at=started.isoformat(),
                 ended_at=clock.now().isoformat(), exit_code=0), 202)
    forged = push_cron(client, "not-the-secret-at-all", run=str(uuid.uuid4()), event="start",
                       started_at=started.isoformat())
    assert forged.status_code == 401
    # airflow/prod: two attempts Interlock polls, one that finished within its submit.
    revision = register(NOOP)
    now = clock.now() - timedelta(minutes=1)
    add_run(revision, "noop", "polled", RunState.RUNNING, now)
    add_attempt("polled", 1, NodeState.SUCCEEDED, now, queued_s=1, ran_s=3, poll_interval=1.0)
    add_attempt("polled", 2, NodeState.RUNNING, now, queued_s=1, poll_interval=2.0)
    add_attempt("polled", 3, NodeState.SUCCEEDED, now, queued_s=1, ran_s=0)
    # dagster/idle: a run it started itself, found by the watcher (nothing pushed).
    with session_scope() as session:
        session.add(ExternalRun(system="dagster/idle", job_id="nightly", external_id="d1",
                                state="succeeded", remote_status="SUCCESS", details={},
                                updated_at=now))
    report = {s["system"]: s for s in ok(client.get(f"{API}/systems"))["systems"]}

    cron = report["cron/db1"]["contact"]
    assert (cron["mode"], cron["pushed_events"], cron["foreign_runs"]) == ("push", 2, 1)
    assert cron["polled_attempts"] == 0
    assert started < datetime.fromisoformat(cron["last_push"]) <= clock.now()
    assert report["airflow/prod"]["contact"] == {
        "mode": "poll", "pushed_events": 0, "last_push": None, "polled_attempts": 2,
        "foreign_runs": 0}
    assert report["dagster/idle"]["contact"]["mode"] == "poll"
    assert report["dagster/idle"]["contact"]["foreign_runs"] == 1
    assert report["cron/idle"]["contact"]["mode"] == "none"
    # Outside the window, nothing of it counts.
    earlier = {"since": (clock.now() - timedelta(days=3)).isoformat(),
               "until": (clock.now() - timedelta(days=2)).isoformat()}
    old = {s["system"]: s for s in ok(client.get(f"{API}/systems", params=earlier))["systems"]}
    assert old["cron/db1"]["contact"] == {"mode": "none", "pushed_events": 0,
                                          "last_push": None, "polled_attempts": 0,
                                          "foreign_runs": 0}


def test_percentiles_are_the_same_in_postgresql_and_in_python(sqlite_store: str,
                                                              pg_schema_url: str) -> None:
    rng = random.Random(6)
    durations = {key: [rng.randrange(1, 10**9) / 10**6 for _ in range(n)]
                 for key, n in (("a", 1), ("b", 2), ("c", 7), ("d", 101))}
    found = {}
    for url in (sqlite_store, pg_schema_url):
        with session_scope(url) as session:
            session.add_all(
                ExternalRun(system=key, job_id="j", external_id=f"{key}{i}", state="succeeded",
                            remote_status="ok", details={}, started_at=T0,
                            ended_at=T0 + timedelta(seconds=d), updated_at=T0)
                for key, values in durations.items() for i, d in enumerate(values))
        with session_scope(url) as session:
            found[url] = distributions(session, start=ExternalRun.started_at,
                                       end=ExternalRun.ended_at, keys=[ExternalRun.system],
                                       where=[ExternalRun.system != "c"])
    assert found[sqlite_store] == found[pg_schema_url]  # exactly, float for float
    assert set(found[sqlite_store]) == {("a",), ("b",), ("d",)}
    for key in ("a", "b", "d"):
        values, dist = sorted(durations[key]), found[sqlite_store][(key,)]
        assert dist.count == len(values)
        assert dist.quantiles[0.5] == pytest.approx(statistics.median(values))
        if len(values) > 1:
            cuts = statistics.quantiles(values, n=100, method="inclusive")
            assert dist.quantiles[0.95] == pytest.approx(cuts[94])
            assert dist.quantiles[0.99] == pytest.approx(cuts[98])
    assert percentile_cont([1.0, 2.0, 3.0, 4.0, 10.0], 0.95) == pytest.approx(8.8)


# --- errors and schema -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["runs", "systems", "flows"])
def test_bad_windows_limits_and_cursors(client: TestClient, path: str) -> None:
    swapped = {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}
    body = ok(client.get(f"{API}/{path}", params=swapped), 422)
    assert [p["loc"] for p in body["problems"]] == [["query", "since"], ["query", "until"]]
    assert "since" in body["detail"] and "until" in body["detail"]
    naive = ok(client.get(f"{API}/{path}", params={"since": "2025-01-01T00:00:00"}), 422)
    assert naive["problems"][0]["loc"] == ["query", "since"]
    if path == "systems":
        return
    for limit in (0, 501):
        ok(client.get(f"{API}/{path}", params={"limit": limit}), 422)
    other = "flows" if path == "runs" else "runs"
    foreign = base64.urlsafe_b64encode(f'["{other}","a","b"]'.encode()).decode()
    for cursor in ("nonsense", "!!", foreign):
        body = ok(client.get(f"{API}/{path}", params={"cursor": cursor}), 400)
        assert "bad cursor" in body["detail"]


def test_openapi_documents_the_dashboards_and_metrics(client: TestClient) -> None:
    spec = ok(client.get("/openapi.json"))
    for name in ("runs", "systems", "flows"):
        assert "200" in spec["paths"][f"{API}/{name}"]["get"]["responses"]
    schemas = spec["components"]["schemas"]
    assert {"DashboardRunPage", "DashboardRun", "SystemsReport", "SystemStats", "SystemHealth",
            "FlowPage", "FlowStats", "Latency", "LastRun"} <= set(schemas)
    assert schemas["SystemStats"]["properties"]["success_rate"]["description"]
    assert schemas["FlowPage"]["properties"]["next_cursor"]["description"]
    scrape = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(scrape) == [metrics.CONTENT_TYPE]


# --- /metrics --------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def test_metrics_from_rows(client: TestClient) -> None:
    now = clock.now()
    alpha, beta = register(flow("alpha", "  a: {uses: noop}\n")), register(
        flow("beta", "  a: {uses: noop}\n"))
    for i, seconds in enumerate([1, 2, 3, 4, 10]):
        add_run(alpha, "alpha", f"a{i}", RunState.SUCCEEDED, now - timedelta(minutes=10 + i),
                seconds)
    add_run(alpha, "alpha", "a-old", RunState.FAILED, now - timedelta(days=3), 50)
    add_run(beta, "beta", "b0", RunState.RUNNING, now - timedelta(minutes=1))
    add_attempt("b0", 1, NodeState.RUNNING, now, queued_s=0)
    add_attempt("b0", 2, NodeState.QUEUED, now, uses="script", system=None)
    with session_scope() as session:
        session.add_all([
            Outbox(kind="advance", run_id="b0", created_at=now - timedelta(seconds=30),
                   available_at=now, sends=1),
            Outbox(kind="poll", run_id="b0", created_at=now, available_at=now, sends=1),
            CronCheck(system="cron/db1", job_id="backup", due_at=now - timedelta(hours=2),
                      status="missed", updated_at=now),
            CronCheck(system="cron/db1", job_id="backup", due_at=now - timedelta(hours=1),
                      status="on_time", updated_at=now),
            ExternalRun(system='cron/db"1\\x', job_id="j", external_id="1", state="failed",
                        remote_status="exit 1", details={}, updated_at=now)])
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(response.text)

    assert got[("interlock_build_info", labels(version=__version__))] == 1
    assert got[("interlock_runs", labels(state="succeeded", namespace=NS, flow="alpha"))] == 5
    assert got[("interlock_runs", labels(state="failed", namespace=NS, flow="alpha"))] == 1
    assert got[("interlock_runs", labels(state="running", namespace=NS, flow="beta"))] == 1
    finished = labels(namespace=NS, flow="alpha", state="succeeded")
    assert got[("interlock_runs_finished_total", finished)] == 5
    quantile = {q: got[("interlock_run_duration_seconds",
                        labels(namespace=NS, flow="alpha", quantile=q))] for q in
                ("0.5", "0.95", "0.99")}
    assert quantile == {"0.5": 3.0, "0.95": pytest.approx(8.8), "0.99": pytest.approx(9.76)}
    assert got[("interlock_run_duration_samples", labels(namespace=NS, flow="alpha"))] == 5
    assert got[("interlock_attempts_in_flight", labels(uses="airflow",
                                                        system="airflow/prod"))] == 1
    assert got[("interlock_attempts_in_flight", labels(uses="script", system="script"))] == 1
    assert got[("interlock_outbox_backlog", labels(kind="advance"))] == 1
    assert got[("interlock_outbox_backlog", labels(kind="report"))] == 0
    assert got[("interlock_outbox_oldest_seconds", labels())] == pytest.approx(30, abs=5)
    cron = {status: got[("interlock_cron_checks", labels(system="cron/db1", job="backup",
                                                         status=status))]
            for status in ("expected", "on_time", "late", "ran_late", "missed")}
    assert cron == {"expected": 0, "on_time": 1, "late": 0, "ran_late": 0, "missed": 0}
    assert got[("interlock_external_runs", labels(system='cron/db"1\\x', state="failed"))] == 1
    with session_scope() as session:
        head = session.scalar(select(AuditHead.seq))
        records = session.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    assert got[("interlock_audit_records_total", labels())] == head == records > 0


def test_metrics_fold_flows_beyond_the_first_registered(client: TestClient) -> None:
    now = clock.now()
    for name in ("first", "second", "third"):
        revision = register(flow(name, "  a: {uses: noop}\n"))
        add_run(revision, name, f"{name}-run", RunState.SUCCEEDED, now - timedelta(minutes=5), 2)
    with session_scope() as session:
        text = metrics.scrape(session, now=now, top_flows=1).decode()
    got = samples(text)
    assert got[("interlock_runs", labels(state="succeeded", namespace=NS, flow="first"))] == 1
    other = labels(state="succeeded", namespace=metrics.OTHER, flow=metrics.OTHER)
    assert got[("interlock_runs", other)] == 2
    assert not any(name == "interlock_run_duration_seconds" and ("flow", "second") in lbl
                   for name, lbl in got)


def test_metrics_endpoint_with_live_runs(live: TestClient, embedded: EmbeddedDispatcher) -> None:
    done = wait_run(start(NOOP, embedded))
    adapter = RemoteAdapter({"wait": [Step.running()]})
    with adapter.installed():
        held = start(HELD, embedded)
        for _ in range(200):
            if ops.get_run(held).nodes[0].state is NodeState.RUNNING:
                break
            time.sleep(0.02)
        got = samples(ok_text(live.get("/metrics")))
        ops.cancel_run(held, dispatcher=embedded)
        wait_run(held)
    assert got[("interlock_attempts_in_flight", labels(uses="scripted", system=SYSTEM))] == 1
    assert got[("interlock_runs_finished_total",
                labels(namespace=NS, flow="noop", state="succeeded"))] == 1
    assert got[("interlock_runs", labels(state="running", namespace=NS, flow="held"))] == 1
    assert done.state is RunState.SUCCEEDED


def ok_text(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.text
