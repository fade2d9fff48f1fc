"""The console's approvals, audit and health pages in a real browser: Debian's Chromium driven
by Playwright against one real `interlock serve` subprocess for the whole module, once on a
SQLite file and once on the real PostgreSQL (a fresh schema).

An approver sees a gated run's request live in the inbox with its evidence (impact, payload),
votes, and the run goes on; the run's starter sees the request but the API refuses the vote
(separation of duties) and the page says why; a viewer gets no vote button and no audit page;
an auditor reads the trail, finds `approval.voted` and verifies the chain; a hostile subject
stays text. Needs `/usr/bin/chromium` and the built console, as `test_console_browser.py`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest
from fixtures_browser import NEEDS_CHROMIUM, login
from serving import env_for, interlock, serving
from sqlalchemy import create_engine, text

from interlock.console import files
from interlock.testing import pg_schema

pytestmark = NEEDS_CHROMIUM
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

API = "/api/v1"
PG_URL = os.environ.get("INTERLOCK_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NS = "shop"
HOSTILE = "<img src=x onerror=window.__pwned=5>"
GATED = dedent(f"""
    id: release
    namespace: {NS}
    inputs: {{note: {{type: string, required: true}}}}
    nodes:
      prepare: {{uses: noop, with: {{amount: 42}}}}
      pay:
        uses: noop
        needs: [prepare]
        with: {{amount: "{{{{ nodes.prepare.outputs.amount }}}}", note: "{{{{ inputs.note }}}}"}}
        produces: [{{namespace: "postgres://ledger", name: payments}}]
        approval:
          subject: "Pay for {{{{ inputs.note }}}}"
          body: "Prepared {{{{ nodes.prepare.outputs.amount }}}} EUR"
          inputs: {{limit: {{type: integer, required: false}}}}
""")
DOWNSTREAM = dedent(f"""
    id: reconcile
    namespace: {NS}
    nodes:
      match:
        uses: noop
        consumes: [{{namespace: "postgres://ledger", name: payments}}]
        produces: [{{namespace: "s3://reports", name: daily-reconciliation}}]
""")
TICK = dedent(f"""
    id: tick
    namespace: {NS}
    nodes:
      wait: {{uses: script, with: {{command: ["sleep", "0.5"]}}}}
""")
CRON = "cron/db1"  # pushes its job runs through the cron wrapper
CRON_SECRET_ENV = "PAGES_CRON_SECRET"
ROLES = {"admin": "admin", "starter": "admin", "approver": "approver", "viewer": "viewer",
         "auditor": "auditor"}


@dataclass
class World:
    base: str
    tokens: dict[str, str]
    api: httpx.Client  # the admin: registered the flows
    db_url: str
    env: dict[str, str]

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def start(self, note: str) -> str:
        """A gated run started by `starter` (not the flows' author)."""
        resp = self.api.post(f"{API}/runs", headers=self.as_("starter"), json={
            "namespace": NS, "flow_id": "release", "inputs": {"note": note}})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def request_of(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.api.get(f"{API}/approvals", params={"run_id": run_id}).json()
            if found:
                return dict(found[0])
            assert time.monotonic() < deadline, f"no approval request for run {run_id}"
            time.sleep(0.2)

    def wait(self, run_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.api.get(f"{API}/runs/{run_id}").json()
            if run["state"] in states:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run['state']}"
            time.sleep(0.2)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    with ExitStack() as stack:
        home = tmp_path_factory.mktemp(f"console-pages-{request.param}")
        env = env_for(home)
        if request.param == "postgresql":
            schema = pg_schema(PG_URL, prefix="pages")
            stack.callback(schema.close)  # drops the schema
            env["INTERLOCK_DATABASE_URL"] = next(schema)
        yield from _world(env, home)


def _world(env: dict[str, str], home: Path) -> Iterator[World]:
    systems = home / "systems.yaml"
    systems.write_text(f"systems:\n  {CRON}: {{events_secret: {{env: {CRON_SECRET_ENV}}}}}\n",
                       encoding="utf-8")
    env.update(INTERLOCK_SYSTEMS=str(systems), **{CRON_SECRET_ENV: secrets.token_hex(16)})
    tokens = {}
    for name, role in ROLES.items():
        made = interlock("tokens", "create", "--name", f"pages-{name}", "--role", role,
                         "--namespace", "*", env=env)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip()
    with serving(env, home / "serve.log") as base:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {tokens['admin']}"}) as api:
            for source in (DOWNSTREAM, GATED, TICK):
                resp = api.post(f"{API}/flows", json={"source": source})
                assert resp.status_code == 201, resp.text
            yield World(base, tokens, api, env["INTERLOCK_DATABASE_URL"], env)


def assert_inert(page: Any) -> None:
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.__pwned") is None


def test_an_approver_sees_the_request_live_with_its_evidence_votes_and_the_run_goes_on(
        page: Any, world: World) -> None:
    login(page, world, "approver")
    page.get_by_test_id("nav-approvals").click()
    page.get_by_test_id("approvals").or_(page.get_by_test_id("no-approvals")).first.wait_for()
    started = time.monotonic()
    run_id = world.start(f"invoice 7 {HOSTILE}")
    asked = world.request_of(run_id)
    row = page.locator(f"tr[data-approval='{asked['id']}']")
    row.wait_for()  # live: from the inbox's stream, no reload
    print(f"request in the inbox {time.monotonic() - started:.2f}s after the run started")
    assert row.get_by_test_id("approval-subject").inner_text() == f"Pay for invoice 7 {HOSTILE}"
    assert_inert(page)

    row.get_by_test_id("approval-subject").click()
    assert page.get_by_test_id("approval-title").inner_text() == f"Pay for invoice 7 {HOSTILE}"
    assert page.get_by_test_id("approval-body").inner_text() == "Prepared 42 EUR"
    datasets = page.get_by_test_id("impact-datasets").inner_text()
    assert "postgres://ledger/payments" in datasets
    assert "s3://reports/daily-reconciliation" in datasets
    assert f"{NS}/reconcile" in page.get_by_test_id("impact").inner_text()
    payload = page.get_by_test_id("payload").inner_text()
    assert "42" in payload and HOSTILE in payload
    assert "user:pages-starter" in page.get_by_test_id("excluded").inner_text()
    assert "user:pages-starter" in page.get_by_test_id("trigger").inner_text()
    assert "1 more" in page.get_by_test_id("missing").inner_text()
    assert_inert(page)

    page.get_by_test_id("input-limit").fill("100")
    page.get_by_test_id("vote-comment").fill("checked the invoice")
    page.get_by_test_id("vote-approve").click()
    assert "approved" in page.get_by_test_id("vote-result").inner_text()
    page.locator("[data-testid=approval-state].s-approved").wait_for()
    assert "checked the invoice" in page.get_by_test_id("votes").inner_text()
    assert world.wait(run_id, {"succeeded", "failed"})["state"] == "succeeded"
    # The wait for people is a bar of its own on the run's timeline, from asked to decided.
    page.goto(f"{world.base}/runs/{run_id}")
    waited = page.get_by_test_id("timeline").locator(f"[data-span='approval:{asked['id']}']")
    waited.wait_for()
    assert waited.get_attribute("data-kind") == "approval"
    assert "approval wait" in waited.locator(".tl-label").inner_text()
    assert waited.locator(".tl-seg").evaluate_all("els => els.map(e => e.dataset.seg)") == \
        ["approval"]


def test_the_starter_sees_the_request_but_the_vote_is_refused_with_the_reason(
        page: Any, world: World) -> None:
    run_id = world.start("invoice 8")
    asked = world.request_of(run_id)
    login(page, world, "starter")
    page.goto(f"{world.base}/approvals")
    page.get_by_test_id("approvals").or_(page.get_by_test_id("no-approvals")).first.wait_for()
    # Not in "waiting for my vote": the starter may not decide; all requests show it.
    assert page.locator(f"tr[data-approval='{asked['id']}']").count() == 0
    page.get_by_test_id("filter-scope").select_option("all")
    page.locator(f"tr[data-approval='{asked['id']}'] a").click()
    page.get_by_test_id("vote-approve").click()  # an admin holds approvals:approve
    refused = page.get_by_test_id("vote-error").inner_text()
    assert "user:pages-starter started the run" in refused
    assert "separation of duties" in refused
    assert page.get_by_test_id("approval-state").inner_text() == "pending"
    assert world.api.get(f"{API}/approvals/{asked['id']}").json()["votes"] == []


def test_a_viewer_sees_no_vote_button_and_no_audit_page(page: Any, world: World) -> None:
    run_id = world.start("invoice 9")
    asked = world.request_of(run_id)
    login(page, world, "viewer")
    assert page.get_by_test_id("nav-approvals").is_visible()
    assert page.get_by_test_id("nav-audit").count() == 0
    assert page.get_by_test_id("nav-health").count() == 0
    page.goto(f"{world.base}/approvals/{asked['id']}")
    page.get_by_test_id("evidence").wait_for()
    assert page.get_by_test_id("no-vote").is_visible()
    assert page.locator("[data-testid^=vote-]").count() == 0
    refused = httpx.post(f"{world.base}{API}/approvals/{asked['id']}/votes",
                         headers=world.as_("viewer"), json={"option": "approve"})
    assert refused.status_code == 403 and "approvals:approve" in refused.text
    page.goto(f"{world.base}/audit")
    assert "audit:read" in page.get_by_test_id("page-denied").inner_text()


def test_an_auditor_reads_the_trail_and_verifies_the_chain_and_sees_health(
        page: Any, world: World) -> None:
    run_id = world.start("invoice 10")
    asked = world.request_of(run_id)
    voted = world.api.post(f"{API}/approvals/{asked['id']}/votes", headers=world.as_("approver"),
                           json={"option": "approve", "comment": "ok"})
    assert voted.status_code == 200, voted.text
    login(page, world, "auditor")
    page.get_by_test_id("nav-audit").click()
    page.get_by_test_id("audit").wait_for()
    page.get_by_test_id("filter-action").fill("approval.voted")
    page.get_by_test_id("filter-action").press("Tab")
    page.wait_for_function("""() => {
        const cells = [...document.querySelectorAll("[data-testid=audit-action]")];
        return cells.length > 0 && cells.every((c) => c.textContent === "approval.voted");
    }""")
    record = page.locator(f"#app tr:has-text('approvals/{asked['id']}')")
    record.get_by_role("button", name="Details").click()
    assert '"option": "approve"' in page.locator("tr.detail").inner_text()
    assert "action=approval.voted" in page.url  # the filter is kept in the address
    page.get_by_test_id("verify").click()
    assert page.get_by_test_id("verify-result").inner_text().startswith("ok: ")

    page.get_by_test_id("nav-health").click()
    page.locator("[data-testid=systems] tr[data-system='noop']").wait_for()
    no_cron = page.get_by_text("No cron jobs registered.")
    assert page.get_by_test_id("cron").or_(no_cron).count() == 1
    assert page.get_by_test_id("nav-approvals").is_visible()


def test_health_shows_which_systems_push_and_which_are_polled(
        page: Any, world: World, tmp_path: Path) -> None:
    # The cron wrapper pushes a job run's start and finish, signed; a script is polled.
    wrapped = subprocess.run(
        [sys.executable, "-m", "interlock", "cron", "exec", "--job", "backup", "--", "true"],
        env={**world.env, "INTERLOCK_API_URL": world.base, "INTERLOCK_CRON_SYSTEM": CRON,
             "INTERLOCK_CRON_SECRET": world.env[CRON_SECRET_ENV],
             "INTERLOCK_CRON_SPOOL": str(tmp_path / "spool")},
        capture_output=True, timeout=60, check=False)
    assert wrapped.returncode == 0, wrapped.stderr
    assert not list((tmp_path / "spool").glob("*.json"))  # delivered, none left waiting
    ticked = world.api.post(f"{API}/runs", json={"namespace": NS, "flow_id": "tick"})
    assert ticked.status_code == 201, ticked.text
    world.wait(ticked.json()["id"], {"succeeded"})
    login(page, world, "auditor")
    page.get_by_test_id("nav-health").click()
    cron = page.locator(f"[data-testid=systems] tr[data-system='{CRON}']")
    assert cron.get_by_test_id("contact").locator(".state").inner_text() == "push"
    assert "2 pushed" in cron.get_by_test_id("contact").inner_text()
    script = page.locator("[data-testid=systems] tr[data-system='script'] [data-testid=contact]")
    assert script.locator(".state").inner_text() == "poll"
    noop = page.locator("[data-testid=systems] tr[data-system='noop'] [data-testid=contact]")
    assert noop.locator(".state").inner_text() == "none"
    # The chart: a push bar for the cron host, a poll bar for the script, none for noop.
    chart = page.get_by_test_id("contact-chart")
    assert chart.locator(f"g[data-system='{CRON}'] rect.contact-push").count() == 1
    assert chart.locator(f"g[data-system='{CRON}'] rect.contact-poll").count() == 0
    assert chart.locator("g[data-system='script'] rect.contact-poll").count() == 1
    assert chart.locator("g[data-system='noop']").count() == 0
    api = world.api.get(f"{API}/dashboards/systems").json()["systems"]
    assert {s["system"]: s["contact"]["mode"] for s in api}[CRON] == "push"


def test_verify_names_a_tampered_record(page: Any, world: World) -> None:
    """Last in the module: it breaks the chain the tests above verify."""
    engine = create_engine(world.db_url)
    with engine.begin() as db:  # behind Interlock's back
        db.execute(text("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 3"))
    engine.dispose()
    login(page, world, "auditor")
    page.goto(f"{world.base}/audit?target=approvals/*")
    page.get_by_test_id("audit").wait_for()
    page.get_by_test_id("verify").click()
    said = page.get_by_test_id("verify-result").inner_text()
    assert said.startswith("broken at record 3: "), said
