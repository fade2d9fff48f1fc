"""Hosts, not processes (issue 18, point 3): the API, two workers and two schedulers each on
a "host" of its own (a network namespace and a hostname), joined by veth pairs to a bridge in
a services namespace that holds a private Redis and a private PostgreSQL. Every message
crosses a network interface; the test itself is a client on one more veth.

- flows posted to the API run on both worker hosts (each script writes which host ran it);
- a worker host whose cable is pulled while its script runs has its work finished by the
  other host (polled from the shared attempts volume, re-sent after the lease); when the
  cable is back it takes work again, and nothing ran twice (a ledger of executions);
- a scheduler host cut off *while it holds a schedule's lock* hands its ticks over: the
  other scheduler fires the next tick on time, and each tick fires once.

Recipe and limits: docs/deploy.md, "Across hosts". Needs root (CI has it); skipped with the
reason where namespaces cannot be made.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from interlock.access.permissions import Role
from interlock.config.env import settings
from interlock.states import RunState
from interlock.store.db import dispose_all, session_scope
from interlock.store.tables import Attempt, Run
from tests.conftest import _use
from tests.helpers import bearer, wait_run
from tests.netns_support import Lab, Proc, lab, unavailable
from tests.serving import OWN
from tests.workers import READY_MARK, kill_leftover_scripts

pytestmark = pytest.mark.integration

LEASE_S = 3
IDLE_TX_MS = 4000   # a cut host's open transaction is ended after this (store/db.py)
DEAD_LINK_MS = 5000  # ... and the cut host drops its connection after this (store/db.py)
RECOVERY_S = 150    # a cut host, back, has noticed its connection is gone within this
API_PORT = 8000
NS = "tests.netns"
# Each script appends "<host> <run> <node>" to the ledger: one line per execution.
LEDGER_LINE = 'echo "$(hostname) $INTERLOCK_RUN_ID $INTERLOCK_NODE_ID" >> {ledger}'


def _script(ledger: Path, then: str = "true", **more: object) -> dict[str, object]:
    command = f"{LEDGER_LINE.format(ledger=ledger)}; {then}"
    return {"uses": "script", "with": {"command": command}, **more}


def _flow(flow_id: str, nodes: dict[str, object], **more: object) -> str:
    return json.dumps({"id": flow_id, "namespace": NS, **more, "nodes": nodes})  # JSON is YAML


def _flows(ledger: Path) -> list[str]:
    fan = {f"n{i}": _script(ledger, "sleep 0.3") for i in range(6)}
    return [
        _flow("hosts", {**fan, "join": {"uses": "noop", "needs": sorted(fan)}}),
        _flow("slow", {"first": _script(ledger, "sleep 4"),
                       "second": _script(ledger, needs=["first"])}),
        _flow("tick", {"stamp": _script(ledger)},
              triggers=[{"schedule": {"cron": "* * * * *", "catchup": "all"}}]),
    ]


@dataclass
class Cluster:
    lab: Lab
    api: httpx.Client
    env: dict[str, str]
    ledger: Path
    schedulers: dict[str, Proc]

    def start(self, flow_id: str) -> str:
        answer = self.api.post("/api/v1/runs", json={"namespace": NS, "flow_id": flow_id,
                                                     "inputs": {}})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def executions(self) -> list[tuple[str, str, str]]:
        """The ledger: (host, run, node), one line per execution of a script."""
        return [tuple(line.split()) for line in self.ledger.read_text().splitlines()]  # type: ignore[misc]


def _until(check: object, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(every)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"cannot build hosts out of network namespaces: {reason}")
    home = tmp_path_factory.mktemp("netns")
    with lab(home) as hosts, pytest.MonkeyPatch.context() as mp:
        client = httpx.Client(timeout=20)
        try:
            yield _boot(hosts, home, mp, client)
        finally:
            client.close()
            kill_leftover_scripts(home / "attempts")
            dispose_all()
            settings.cache_clear()


def _boot(hosts: Lab, home: Path, mp: pytest.MonkeyPatch, client: httpx.Client) -> Cluster:
    for name in ("api", "w1", "w2", "sched1", "sched2"):
        hosts.add_host(name)
    hosts.start_redis(home)
    hosts.start_postgres()
    _use(mp, home, hosts.pg_url)   # the test's own view of the store, through its veth
    mp.setenv("INTERLOCK_IDLE_TX_TIMEOUT_MS", str(IDLE_TX_MS))
    settings.cache_clear()
    with session_scope() as session:   # migrates, before any host starts
        session.execute(text("SELECT 1"))
    env = {k: v for k, v in os.environ.items() if k not in OWN}
    env.update(INTERLOCK_HOME=str(home), INTERLOCK_DATABASE_URL=hosts.pg_url,
               INTERLOCK_BROKER_URL=hosts.redis_url, INTERLOCK_QUEUE=f"q-{uuid.uuid4().hex[:8]}",
               INTERLOCK_LEASE_SECONDS=str(LEASE_S), INTERLOCK_POLICIES=str(home / "policies"),
               INTERLOCK_IDLE_TX_TIMEOUT_MS=str(IDLE_TX_MS),
               INTERLOCK_PG_DEAD_LINK_MS=str(DEAD_LINK_MS))
    api_host = hosts.hosts["api"].address
    api = hosts.interlock("api", "api", ["serve", "--host", api_host, "--port", str(API_PORT)], env)
    workers = [hosts.interlock(w, w, ["worker", "--concurrency", "4", "--name", f"{w}@netns",
                                      "--loglevel", "INFO"], env) for w in ("w1", "w2")]
    schedulers = {s: hosts.interlock(s, s, ["scheduler"], env) for s in ("sched1", "sched2")}
    client.base_url = httpx.URL(f"http://{api_host}:{API_PORT}")
    client.headers.update(bearer(Role.ADMIN, "*", name="netns-admin"))
    _until(lambda: _healthy(client, api), 60, f"the API did not come up:\n{api.text()}", 0.2)
    for worker in workers:
        _until(lambda w=worker: READY_MARK in w.text() or not w.alive(), 60, p_text(worker))
        assert worker.alive(), worker.text()
    ledger = home / "ledger.txt"
    ledger.touch()
    for source in _flows(ledger):
        answer = client.post("/api/v1/flows", json={"source": source})
        assert answer.status_code in (200, 201), answer.text
    for proc in schedulers.values():
        _until(lambda p=proc: "scheduler started" in p.text() or not p.alive(), 60, p_text(proc))
    return Cluster(lab=hosts, api=client, env=env, ledger=ledger, schedulers=schedulers)


def p_text(proc: Proc) -> str:
    return f"{proc.name} not ready:\n{proc.text()[-3000:]}"


def _healthy(client: httpx.Client, proc: Proc) -> bool:
    assert proc.alive(), proc.text()
    try:
        return client.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


# --- 1. flows cross hosts -------------------------------------------------------------------

def test_flows_posted_to_the_api_host_run_on_both_worker_hosts(cluster: Cluster) -> None:
    runs = [cluster.start("hosts") for _ in range(4)]
    for run_id in runs:
        detail = wait_run(run_id, timeout=60)
        assert detail.state is RunState.SUCCEEDED, (run_id, detail.reason)
    ran = [e for e in cluster.executions() if e[1] in runs]
    assert len(ran) == 4 * 6 and len(set(ran)) == 24
    assert {host for host, _, _ in ran} == {"w1", "w2"}, Counter(h for h, _, _ in ran)
    with session_scope() as session:
        submitters = set(session.scalars(select(Attempt.worker).where(
            Attempt.run_id.in_(runs), Attempt.uses == "script")))
    assert {w.split(":")[0] for w in submitters} == {"w1", "w2"}


# --- 2. a worker host cut mid-node ------------------------------------------------------------

def _running_first(run_ids: list[str], host: str) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Attempt.run_id).where(
            Attempt.run_id.in_(run_ids), Attempt.node_id == "first",
            Attempt.state == "running", Attempt.worker.like(f"{host}:%"))))


def test_a_worker_host_cut_mid_node_is_taken_over_and_nothing_runs_twice(
        cluster: Cluster) -> None:
    runs: list[str] = []
    while len(_running_first(runs, "w1")) < 2:
        assert len(runs) < 12, "w1 never ran a `first` node"
        runs.append(cluster.start("slow"))
        time.sleep(0.4)
    cut_mid_node = _running_first(runs, "w1")
    cluster.lab.cut("w1")
    cut_at = time.monotonic()
    # Sent while w1's last read from Redis may still be pending on the server: a message
    # Redis pops for it now is lost in the cable; the outbox re-sends it after the lease.
    runs += [cluster.start("slow") for _ in range(3)]
    try:
        finished = [wait_run(run_id, timeout=60) for run_id in runs]
        took = time.monotonic() - cut_at
    finally:
        cluster.lab.restore("w1")
    assert [d.state for d in finished] == [RunState.SUCCEEDED] * len(runs), \
        [(d.id, d.reason, {n.id: n.state.value for n in d.nodes}) for d in finished]
    print(f"\n{len(runs)} runs finished {took:.1f}s after w1's cable was pulled "
          f"({len(cut_mid_node)} had a script running on w1)")
    by_node = {(run, node): host for host, run, node in cluster.executions()}
    for run_id in cut_mid_node:
        assert by_node[(run_id, "first")] == "w1"      # its script ran on through the cut
        assert by_node[(run_id, "second")] == "w2"     # the rest was the other host's
    after = _w1_takes_work_again(cluster)
    _assert_each_execution_once(cluster, runs + after)


def _w1_takes_work_again(cluster: Cluster) -> list[str]:
    """Flows started after the cable is back until one of them runs a node on w1."""
    started: list[str] = []
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        started.append(cluster.start("hosts"))
        assert wait_run(started[-1], timeout=45).state is RunState.SUCCEEDED
        if any(h == "w1" and r in started for h, r, _ in cluster.executions()):
            return started
    raise AssertionError("w1 took no work after its cable came back:\n"
                         + cluster.lab.logs.joinpath("w1.log").read_text()[-3000:])


def _assert_each_execution_once(cluster: Cluster, runs: list[str]) -> None:
    time.sleep(LEASE_S + 2)  # whatever w1 held when cut has had time to resurface
    lines = Counter((run, node) for _, run, node in cluster.executions() if run in runs)
    assert lines and max(lines.values()) == 1, {k: c for k, c in lines.items() if c > 1}
    with session_scope() as session:
        attempts = session.execute(select(Attempt.run_id, Attempt.node_id, Attempt.number,
                                          Attempt.state).where(Attempt.run_id.in_(runs))).all()
        states = set(session.scalars(select(Run.state).where(Run.id.in_(runs))))
    assert states == {RunState.SUCCEEDED.value}
    assert all(a.number == 1 and a.state == "succeeded" for a in attempts), \
        [a for a in attempts if a.number != 1 or a.state != "succeeded"]
    scripts = {(a.run_id, a.node_id) for a in attempts if a.node_id != "join"}
    assert set(lines) == scripts


# --- 3. a scheduler host cut off ----------------------------------------------------------------

def _fired(proc: Proc) -> set[str]:
    return {line.rsplit("run ", 1)[1].strip() for line in proc.text().splitlines()
            if " fired " in line and f"{NS}/tick" in line}


def _tick_runs() -> dict[str, list[str]]:
    with session_scope() as session:
        runs = session.scalars(select(Run).where(Run.flow_id == "tick")).all()
    ticks: dict[str, list[str]] = {}
    for run in runs:
        ticks.setdefault(run.trigger["tick"], []).append(run.id)
    return ticks


def _holding_a_schedule_lock(address: str) -> bool:
    """Whether the host at ``address`` is inside a transaction that locked a cursor."""
    with session_scope() as session:
        return bool(session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE client_addr = cast(:a AS inet) "
            "AND state = 'idle in transaction' AND query ILIKE :q"),
            {"a": address, "q": "%schedule_cursors%FOR UPDATE%"}))


def test_a_scheduler_host_cut_off_hands_its_ticks_to_the_other(cluster: Cluster) -> None:
    sched1, sched2 = cluster.schedulers["sched1"], cluster.schedulers["sched2"]
    sched1_netns, sched1_address = (cluster.lab.hosts["sched1"].netns,
                                    cluster.lab.hosts["sched1"].address)
    # Pull sched1's cable at the worst moment: inside a transaction that holds the schedule's
    # cursor, which sched2 must lock too. A slow link (16 kbit/s out) makes it catchable.
    slow = ["tc", "-n", sched1_netns, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate",
            "16kbit", "burst", "1600", "latency", "2s"]
    subprocess.run(slow, check=True)
    try:
        _until(lambda: _holding_a_schedule_lock(sched1_address), 30,
               "sched1 never seen holding a schedule's lock", 0.01)
        cluster.lab.cut("sched1")
        due = _next_minute(datetime.now(UTC) + timedelta(seconds=2))
        _until(lambda: due.isoformat() in _tick_runs(),
               (due - datetime.now(UTC)).total_seconds() + 30,
               f"tick {due:%H:%M} was not fired while sched1 was cut off", 0.2)
        late = (datetime.now(UTC) - due).total_seconds()
    finally:
        cluster.lab.restore("sched1")
        subprocess.run([*slow[:4], "del", "dev", "eth0", "root"], check=False)
        restored = time.monotonic()
    (run_id,) = _tick_runs()[due.isoformat()]
    _until(lambda: run_id in _fired(sched2), 10, f"sched2 did not log firing {run_id}")
    assert run_id not in _fired(sched1)
    print(f"\ntick {due:%H:%M} fired by sched2 {late:.1f}s after it was due, sched1 cut off")
    assert late < IDLE_TX_MS / 1000 + 3
    assert wait_run(run_id, timeout=30).state is RunState.SUCCEEDED
    # sched1 learns its connection is gone (dropped by the dead-link bound, or ended by the
    # server's idle-in-transaction timeout once back), and goes on. How soon is TCP's doing,
    # not ours: in two CI runs it took more than 15 s (once more than 45 s) after the cable
    # was back, here it is usually at once. The bound is TCP's longest retransmission
    # interval (120 s) and some: what must hold is that it goes on, and it prints how soon.
    _until(lambda: "idle-in-transaction timeout" in sched1.text()
           or "scheduler pass failed" in sched1.text(), RECOVERY_S,
           f"sched1 had not learned its connection was gone {RECOVERY_S}s after its cable "
           f"was back:\n{sched1.text()[-3000:]}", 0.5)
    print(f"sched1 went on {time.monotonic() - restored:.1f}s after its cable was back")
    assert sched1.alive() and sched2.alive()
    ticks = _tick_runs()
    assert all(len(ids) == 1 for ids in ticks.values()), ticks
    stamped = [(host, run) for host, run, node in cluster.executions() if node == "stamp"]
    assert sorted(run for _, run in stamped) == sorted(ids[0] for ids in ticks.values())
    assert {host for host, _ in stamped} <= {"w1", "w2"}


def _next_minute(now: datetime) -> datetime:
    """The first minute boundary after ``now``: a `* * * * *` tick."""
    return now.replace(second=0, microsecond=0) + timedelta(minutes=1)
