"""Every route that mutates answers the committed result while the broker is down (issue 18:
"either the committed result or an error that guarantees nothing was committed"). A real
worker on a Redis server of the test's own, which the test stops: cancel, retry, a vote,
a pushed cron report and webhooks each answer promptly with what they committed, a client
that repeats the request changes nothing, and once Redis is back the work they committed
is done, once (each script node writes `<run> <attempt>` to a ledger per execution).

`tests/test_broker_down.py` does the same for `POST /runs`; docs/operations.md has the table
of every mutating route with the broker down and with the store down."""

from __future__ import annotations

import json
import shutil
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.config.env import settings
from interlock.dispatch.celery_app import CeleryDispatcher, make_app
from interlock.states import RunState
from interlock.store.db import dispose_all, session_scope
from tests.helpers import bearer, wait_run
from tests.soak_services import PrivatePostgres, PrivateRedis, services_missing
from tests.workers import worker_pool

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="needs the redis-server binary")]

NS = "tests.mutations"
API = "/api/v1"
PROMPT_S = 5.0  # with the broker down an answer takes at most this long (sends give up fast)
CRON_SYSTEM, CRON_JOB = "cron/mutations", "nightly"
CRON_SECRET_ENV = "MUTATIONS_CRON_SECRET"
CRON_SECRET = "mutations-cron-secret-0123456789abcdef"


def flow(flow_id: str, node: str, home: Path, *, tail: str = "", extra: str = "") -> str:
    """One script node `node` that appends `<run> <attempt>` to ledger-<flow_id>."""
    line = f"echo $INTERLOCK_RUN_ID $INTERLOCK_ATTEMPT >> {home / f'ledger-{flow_id}'}"
    return (f"id: {flow_id}\nnamespace: {NS}\n{extra}nodes:\n  {node}:\n    uses: script\n"
            f"    with: {{command: \"{line}{tail}\"}}\n")


def gate() -> str:
    return ("    approval:\n      subject: Release while the broker is down\n"
            "      rules: [{group: ops}]\n")


@dataclass
class Stack:
    client: TestClient
    redis: PrivateRedis
    home: Path
    admin: dict[str, str]

    def register(self, source: str) -> None:
        answer = self.client.post(f"{API}/flows", json={"source": source}, headers=self.admin)
        assert answer.status_code == 201, answer.text

    def start(self, flow_id: str) -> str:
        answer = self.client.post(f"{API}/runs", json={"namespace": NS, "flow_id": flow_id},
                                  headers=self.admin)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def timed(self, method: str, path: str, **kw: object) -> httpx.Response:
        """The request, which must be answered within PROMPT_S."""
        began = time.monotonic()
        answer = self.client.request(method, API + path, **kw)  # type: ignore[arg-type]
        took = time.monotonic() - began
        assert took < PROMPT_S, f"{method} {path} took {took:.1f} s with the broker down"
        return answer

    def state(self, run_id: str) -> str:
        return str(self.client.get(f"{API}/runs/{run_id}", headers=self.admin).json()["state"])

    def ledger(self, flow_id: str) -> Counter[str]:
        path = self.home / f"ledger-{flow_id}"
        return Counter(path.read_text().splitlines()) if path.exists() else Counter()


@pytest.fixture
def stack(pg_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
          ) -> Iterator[Stack]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(f"systems:\n  {CRON_SYSTEM}: {{events_secret: {{env: "
                       f"{CRON_SECRET_ENV}}}}}\n", encoding="utf-8")
    env = {"INTERLOCK_HOME": str(tmp_path), "INTERLOCK_DATABASE_URL": pg_schema_url,
           "INTERLOCK_SYSTEMS": str(systems), CRON_SECRET_ENV: CRON_SECRET,
           "INTERLOCK_LEASE_SECONDS": "3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        with worker_pool(pg_schema_url, tmp_path, count=1,
                         extra_env={**env, "INTERLOCK_BROKER_URL": redis.url}):
            app = create_app(dispatcher=CeleryDispatcher(make_app(redis.url)))
            with TestClient(app) as client:
                yield Stack(client, redis, tmp_path, bearer(Role.ADMIN, "*", name="admin"))
    finally:
        redis.stop()
        settings.cache_clear()


def _wait(what: str, ready: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_cancel_with_the_broker_down_answers_202_and_the_run_is_cancelled_once_it_is_back(
        stack: Stack) -> None:
    stack.register(flow("slow", "work", stack.home, tail="; sleep 120"))
    run_id = stack.start("slow")
    _wait("the node running", lambda: stack.ledger("slow"))
    stack.redis.stop()
    asked = stack.timed("POST", f"/runs/{run_id}/cancel", headers=stack.admin)
    assert asked.status_code == 202, asked.text
    assert stack.state(run_id) == RunState.CANCELLING.value  # committed, answered
    again = stack.timed("POST", f"/runs/{run_id}/cancel", headers=stack.admin)
    assert again.status_code in (202, 409), again.text  # a repeat changes nothing
    stack.redis.start()
    assert wait_run(run_id, timeout=90).state is RunState.CANCELLED
    assert list(stack.ledger("slow").values()) == [1]  # the script ran once, and was stopped


def test_retry_with_the_broker_down_answers_202_and_the_node_runs_again_once(
        stack: Stack) -> None:
    fixed = stack.home / "fixed"
    stack.register(flow("flaky", "work", stack.home, tail=f"; test -e {fixed}"))
    run_id = stack.start("flaky")
    assert wait_run(run_id, timeout=60).state is RunState.FAILED
    fixed.touch()
    stack.redis.stop()
    asked = stack.timed("POST", f"/runs/{run_id}/retry", headers=stack.admin)
    assert asked.status_code == 202, asked.text
    assert asked.json()["nodes"] == ["work"]
    assert stack.state(run_id) not in (RunState.FAILED.value, RunState.SUCCEEDED.value)
    again = stack.timed("POST", f"/runs/{run_id}/retry", headers=stack.admin)
    assert again.status_code == 409, again.text  # not failed any more: nothing reopened twice
    stack.redis.start()
    assert wait_run(run_id, timeout=90).state is RunState.SUCCEEDED
    assert stack.ledger("flaky") == Counter({f"{run_id} 1": 1, f"{run_id} 2": 1})


def test_a_vote_with_the_broker_down_answers_the_decision_and_the_node_runs_once(
        stack: Stack) -> None:
    stack.register(flow("gated", "release", stack.home) + gate())
    run_id = stack.start("gated")
    listed: list[dict[str, object]] = []

    def asked() -> bool:
        listed[:] = stack.client.get(f"{API}/approvals?run_id={run_id}",
                                     headers=stack.admin).json()
        return bool(listed)
    _wait("the approval request", asked)
    request_id = listed[0]["id"]
    with session_scope() as session:
        made, _ = tokens.create(session, name="olga", role=Role.APPROVER, namespace=NS,
                                created_by="tests", groups=("ops",))
    olga = {"Authorization": f"Bearer {made}"}
    stack.redis.stop()
    vote = {"option": "approve", "comment": "the broker is down"}
    voted = stack.timed("POST", f"/approvals/{request_id}/votes", json=vote, headers=olga)
    assert voted.status_code == 200, voted.text
    assert voted.json()["state"] == "approved"
    again = stack.timed("POST", f"/approvals/{request_id}/votes", json=vote, headers=olga)
    assert again.status_code == 409, again.text  # decided: a repeated vote is refused
    assert not stack.ledger("gated")
    stack.redis.start()
    assert wait_run(run_id, timeout=90).state is RunState.SUCCEEDED
    assert stack.ledger("gated") == Counter({f"{run_id} 1": 1})


def _push(stack: Stack, later_s: float = 0.0, **report: object) -> httpx.Response:
    """What `interlock cron exec` posts, signed; `later_s` signs it as sent that much later
    (a repeat of the report, as a spool flush sends it: not a replay of the same request,
    which is refused)."""
    body = json.dumps({"system": CRON_SYSTEM, "job": CRON_JOB, **report}).encode()
    signed = signing.sign(CRON_SECRET, body, now=time.time() + later_s)
    return stack.timed("POST", "/events/cron", content=body,
                       headers={"Content-Type": "application/json", **signed})


def test_a_pushed_cron_report_with_the_broker_down_fires_its_after_run_once(
        stack: Stack) -> None:
    stack.register(flow("after-cron", "work", stack.home, extra=(
        f"triggers:\n  - after: {{system: {CRON_SYSTEM}, job: {CRON_JOB}, state: success}}\n")))
    job_run, began = str(uuid.uuid4()), "2026-12-01T10:00:00+00:00"
    stack.redis.stop()
    start = _push(stack, run=job_run, event="start", started_at=began)
    assert start.status_code == 202, start.text
    finish = {"run": job_run, "event": "finish", "started_at": began,
              "ended_at": "2026-12-01T10:00:05+00:00", "exit_code": 0}
    first = _push(stack, **finish)
    assert first.status_code == 202, first.text
    fired = first.json()["triggered_runs"]
    assert len(fired) == 1 and first.json()["external_run_id"] is not None
    repeated = _push(stack, later_s=2.0, **finish)
    assert repeated.status_code == 202, repeated.text
    assert repeated.json()["triggered_runs"] == []  # the same finish fires nothing again
    stack.redis.start()
    assert wait_run(fired[0], timeout=90).state is RunState.SUCCEEDED
    assert stack.ledger("after-cron") == Counter({f"{fired[0]} 1": 1})


def test_webhooks_with_the_broker_down_answer_201_and_each_runs_once(stack: Stack) -> None:
    stack.register(flow("hook", "work", stack.home, extra=(
        "inputs: {order: {type: string, required: true}}\n"
        "triggers:\n  - webhook: {key: orders}\n")))
    path = f"/webhooks/{NS}/hook/orders"
    stack.redis.stop()
    keyed = [stack.timed("POST", path, json={"order": "k1"},
                         headers={"Idempotency-Key": "order-k1"}) for _ in range(2)]
    assert [a.status_code for a in keyed] == [201, 200], keyed[0].text
    assert keyed[0].json()["id"] == keyed[1].json()["id"]
    plain = stack.timed("POST", path, json={"order": "u1"})
    assert plain.status_code == 201, plain.text
    stack.redis.start()
    runs = [keyed[0].json()["id"], plain.json()["id"]]
    for run_id in runs:
        assert wait_run(run_id, timeout=90).state is RunState.SUCCEEDED
    assert stack.ledger("hook") == Counter({f"{r} 1": 1 for r in runs})


# The store down. Every route writes the store in one transaction, so with PostgreSQL down it
# answers 503 and nothing is committed; the policy routes also write the policy folder, and
# that write must not outlive a transaction that failed.
POLICY = """policy: {name}
scope: "{ns}"
mode: enforce
rules:
  - name: bounded-retries
    check: "node.retry.attempts <= {most}"
    message: "`retry.attempts` is at most {most}"
"""


@pytest.fixture
def store_down_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                      ) -> Iterator[tuple[TestClient, PrivatePostgres]]:
    missing = services_missing()
    if missing is not None:
        pytest.skip(missing)
    postgres = PrivatePostgres()
    try:
        postgres.start()
        monkeypatch.setenv("INTERLOCK_HOME", str(tmp_path))
        monkeypatch.setenv("INTERLOCK_DATABASE_URL", postgres.url)
        monkeypatch.setenv("INTERLOCK_POLICIES", str(tmp_path / "policies"))
        settings.cache_clear()
        with TestClient(create_app(dispatcher=_Nothing())) as client:
            yield client, postgres
    finally:
        dispose_all()
        postgres.stop()
        settings.cache_clear()


class _Nothing:
    """No broker at all: these requests hand nothing to workers."""

    def send(self, work: object, *, countdown: float = 0.0) -> None:
        pass

    def send_polls(self, batch: object) -> None:
        pass


def test_a_policy_write_the_store_refuses_leaves_the_policy_folder_as_it_was(
        store_down_client: tuple[TestClient, PrivatePostgres], tmp_path: Path) -> None:
    client, postgres = store_down_client
    admin = bearer(Role.ADMIN, "*", name="policy-admin")
    folder = tmp_path / "policies"
    kept = client.put(f"{API}/policies/kept", headers=admin,
                      json={"source": POLICY.format(name="kept", ns=NS, most=5)})
    assert kept.status_code == 200, kept.text
    before = {p.name: p.read_text() for p in folder.glob("*.yaml")}
    postgres.down()
    try:
        changed = client.put(f"{API}/policies/kept", headers=admin,
                             json={"source": POLICY.format(name="kept", ns=NS, most=1)})
        added = client.put(f"{API}/policies/added", headers=admin,
                           json={"source": POLICY.format(name="added", ns=NS, most=1)})
        removed = client.delete(f"{API}/policies/kept", headers=admin)
    finally:
        postgres.up()
    assert [a.status_code for a in (changed, added, removed)] == [503] * 3, changed.text
    assert {p.name: p.read_text() for p in folder.glob("*.yaml")} == before  # nothing
    again = client.put(f"{API}/policies/kept", headers=admin,
                       json={"source": POLICY.format(name="kept", ns=NS, most=1)})
    assert again.status_code == 200, again.text  # the store back: the same request works
    assert "<= 1" in (folder / "kept.yaml").read_text()
