"""Every console page in a real browser, for accessibility, speed and the docs: axe-core (the
npm package, `console/node_modules/axe-core`) on each page with no serious or critical
violation; the first paint of a 200-node run's page measured in the browser; the log
search; and a screenshot of each page.

Screenshots go to a temporary folder, or to `docs/console/` with
`INTERLOCK_SCREENSHOTS=docs/console .venv/bin/python -m pytest tests/test_console_a11y.py`
(which is how the README's pictures are made). Needs `/usr/bin/chromium` and the built
console, as `test_console_browser.py`.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest
from fixtures_browser import NEEDS_CHROMIUM
from serving import env_for, interlock, serving

from interlock.console import files

pytestmark = NEEDS_CHROMIUM
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
API = "/api/v1"
NS = "shop"
LAYERS, WIDTH = 20, 10  # the wide flow: 200 nodes, each needing two of the layer before
BLOCKING = {"serious", "critical"}
CRON, CRON_SECRET_ENV = "cron/db1", "TOUR_CRON_SECRET"  # a system that pushes, for health


def wide_flow() -> str:
    lines = ["id: wide", f"namespace: {NS}", "nodes:"]
    for layer in range(LAYERS):
        for i in range(WIDTH):
            needs = ("" if layer == 0 else
                     f", needs: [n{layer - 1}_{i}, n{layer - 1}_{(i + 1) % WIDTH}]")
            lines.append(f"  n{layer}_{i}: {{uses: noop{needs}}}")
    return "\n".join(lines) + "\n"


CHATTY = dedent(f"""
    id: chatty
    namespace: {NS}
    nodes:
      extract: {{uses: noop, with: {{rows: 1200}}}}
      load:
        uses: script
        needs: [extract]
        with:
          command: ["sh", "-c", "for i in $(seq 1 40); do echo loaded batch $i; done;
                    echo 'ERROR disk full on /data' >&2; exit 1"]
      report: {{uses: noop, needs: [load]}}
""")
GATED = dedent(f"""
    id: payout
    namespace: {NS}
    nodes:
      prepare: {{uses: noop, with: {{amount: 42}}}}
      pay:
        uses: noop
        needs: [prepare]
        produces: [{{namespace: "postgres://ledger", name: payments}}]
        approval:
          subject: "Pay 42 EUR to ACME"
          body: "Prepared by the nightly batch"
""")


@dataclass
class Site:
    base: str
    token: str
    api: httpx.Client
    shots: Path
    env: dict[str, str]

    def run(self, flow: str, states: set[str]) -> str:
        resp = self.api.post(f"{API}/runs", json={"namespace": NS, "flow_id": flow})
        assert resp.status_code == 201, resp.text
        run_id = str(resp.json()["id"])
        deadline = time.monotonic() + 90
        while (state := self.api.get(f"{API}/runs/{run_id}").json()["state"]) not in states:
            assert time.monotonic() < deadline, f"run {run_id} still {state}"
            time.sleep(0.2)
        return run_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm --prefix console ci`")
    home = tmp_path_factory.mktemp("console-a11y")
    systems = home / "systems.yaml"
    systems.write_text(f"systems:\n  {CRON}: {{events_secret: {{env: {CRON_SECRET_ENV}}}}}\n",
                       encoding="utf-8")
    env = env_for(home, INTERLOCK_SYSTEMS=str(systems),
                  **{CRON_SECRET_ENV: secrets.token_hex(16)})
    made = interlock("tokens", "create", "--name", "tour-admin", "--role", "admin",
                     "--namespace", "*", env=env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    shots = Path(os.environ.get("INTERLOCK_SCREENSHOTS") or home / "screenshots")
    shots = shots if shots.is_absolute() else ROOT / shots
    shots.mkdir(parents=True, exist_ok=True)
    with serving(env, home / "serve.log") as base, httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {token}"}) as api:
        for source in (wide_flow(), CHATTY, GATED):
            resp = api.post(f"{API}/flows", json={"source": source})
            assert resp.status_code == 201, resp.text
        yield Site(base, token, api, shots, env)


@pytest.fixture(scope="module")
def tab(browser: Any, site: Site) -> Iterator[Any]:
    """One logged-in tab for the module. axe-core is injected as a script, which the
    console's own policy forbids: this context alone bypasses the CSP (the other browser
    tests keep it and fail on any refusal)."""
    context = browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(site.base + "/")
    audit(page, site, "login")
    page.get_by_test_id("token").fill(site.token)
    page.get_by_test_id("login").click()
    page.get_by_test_id("who").wait_for()
    yield page
    context.close()


def audit(page: Any, site: Site, name: str) -> None:
    """axe-core on the page as it is now, then its screenshot."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    bad = [f"{v['id']} ({v['impact']}): {v['help']} at "
           f"{[n['target'] for n in v['nodes'][:3]]}"
           for v in result["violations"] if v["impact"] in BLOCKING]
    minor = [f"{v['id']} ({v['impact']})" for v in result["violations"]
             if v["impact"] not in BLOCKING]
    print(f"{name}: {len(result['violations'])} axe violations, minor: {minor}")
    page.screenshot(path=str(site.shots / f"{name}.png"), full_page=False)
    assert bad == [], f"{name}: serious or critical accessibility violations:\n" + "\n".join(bad)


def test_runs_list(tab: Any, site: Site) -> None:
    site.run("chatty", {"failed"})
    tab.goto(site.base + "/")
    tab.get_by_test_id("runs").wait_for()
    audit(tab, site, "runs")


def test_a_200_node_run_paints_fast_and_passes_axe(tab: Any, site: Site) -> None:
    run_id = site.run("wide", {"succeeded"})
    paints, parts = [], []
    for _ in range(3):
        tab.goto(f"{site.base}/runs/{run_id}")
        tab.wait_for_function(
            f"document.querySelectorAll('[data-node]').length >= {LAYERS * WIDTH}"
            " && document.querySelector('[data-node=\"n19_9\"].s-succeeded') !== null")
        paints.append(tab.evaluate("performance.now()"))  # ms since navigation started
        graph = tab.get_by_test_id("graph")
        asked, laid, layout = (int(graph.get_attribute(f"data-{k}-ms") or -1)
                               for k in ("asked", "laid", "layout"))
        parts.append(f"{asked} · {laid - asked} ({layout} of it ELK) · {paints[-1] - laid:.0f}")
    print(f"run page with {LAYERS * WIDTH} laid-out nodes: first paint "
          f"{', '.join(f'{p:.0f}' for p in paints)} ms (navigation to every node drawn); "
          f"of each: the run's data in hand · the layout worker · drawn: {'; '.join(parts)} ms")
    assert tab.locator("[data-node]").count() == LAYERS * WIDTH
    audit(tab, site, "run-200-nodes")


def test_a_failed_run_root_cause_and_log_search(tab: Any, site: Site) -> None:
    run_id = site.run("chatty", {"failed"})
    tab.goto(f"{site.base}/runs/{run_id}")
    tab.locator("[data-node='load'] button").click()
    assert "exit code 1" in tab.get_by_test_id("root-error").inner_text()
    audit(tab, site, "run-root-cause")
    tab.locator("[data-node='load'] button").click()
    tab.get_by_test_id("load-log").click()
    log = tab.get_by_test_id("log")
    log.wait_for()
    total = int(tab.get_by_test_id("log-count").inner_text().split()[0])
    assert total >= 41
    tab.get_by_test_id("log-search").fill("DISK FULL")  # any case
    assert tab.get_by_test_id("log-count").inner_text().strip().startswith(f"1 of {total}")
    assert log.locator(".logline").count() == 1
    assert log.locator("mark").inner_text() == "disk full"
    tab.get_by_test_id("log-search").fill("batch 1")  # batch 1, 10..19
    assert log.locator(".logline").count() == 11
    audit(tab, site, "run-log-search")
    tab.get_by_test_id("log-search").fill("")
    assert log.locator(".logline").count() == total


def test_approvals_inbox_and_a_request(tab: Any, site: Site) -> None:
    run_id = site.run("payout", {"running"})
    deadline = time.monotonic() + 30
    while not (found := site.api.get(f"{API}/approvals", params={"run_id": run_id}).json()):
        assert time.monotonic() < deadline, "no approval request"
        time.sleep(0.2)
    tab.goto(f"{site.base}/approvals?scope=all")
    tab.locator(f"tr[data-approval='{found[0]['id']}']").wait_for()
    audit(tab, site, "approvals")
    tab.goto(f"{site.base}/approvals/{found[0]['id']}")
    tab.get_by_test_id("evidence").wait_for()
    audit(tab, site, "approval")


def test_audit_page(tab: Any, site: Site) -> None:
    tab.goto(f"{site.base}/audit")
    tab.get_by_test_id("audit").wait_for()
    tab.get_by_test_id("verify").click()
    assert tab.get_by_test_id("verify-result").inner_text().startswith("ok")
    audit(tab, site, "audit")


def test_lineage_map(tab: Any, site: Site) -> None:
    """The payout flow declares it produces `postgres://ledger/payments`: that dataset's
    graph, found as the map's search finds it."""
    found = site.api.get(f"{API}/lineage/nodes", params={"q": "payments"}).json()
    node = next(n["id"] for n in found["nodes"] if n["id"].startswith("dataset:"))
    tab.goto(f"{site.base}/lineage?node={node}")
    tab.get_by_test_id("lin-map").wait_for()
    tab.wait_for_function("document.querySelector('[data-paint-ms]') !== null")
    audit(tab, site, "lineage")


def test_health_page(tab: Any, site: Site, tmp_path: Path) -> None:
    """With a cron host that pushed (the real wrapper), beside the polled script."""
    pushed = subprocess.run(
        [sys.executable, "-m", "interlock", "cron", "exec", "--job", "backup", "--", "true"],
        env={**site.env, "INTERLOCK_API_URL": site.base, "INTERLOCK_CRON_SYSTEM": CRON,
             "INTERLOCK_CRON_SECRET": site.env[CRON_SECRET_ENV],
             "INTERLOCK_CRON_SPOOL": str(tmp_path)},
        capture_output=True, timeout=60, check=False)
    assert pushed.returncode == 0, pushed.stderr
    tab.goto(f"{site.base}/health")
    tab.locator(f"tr[data-system='{CRON}'] .k-push").wait_for()
    tab.get_by_test_id("systems").or_(tab.get_by_test_id("flows")).first.wait_for()
    audit(tab, site, "health")
