"""The console in a real browser: Debian's Chromium driven by Playwright against a real
`interlock serve` subprocess on a free loopback port, with real runs on a SQLite store and
on the real PostgreSQL (a fresh schema).

Needs `/usr/bin/chromium` (`apt-get install chromium`; Playwright's own browser download is
not used) and the built console (`npm --prefix console ci && npm --prefix console run
build`, which `.ci/run` does).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest
from fixtures_browser import NEEDS_CHROMIUM, login
from serving import env_for, free_port, interlock, serving

from interlock.console import files
from interlock.console.sse import PER_PRINCIPAL
from interlock.testing import pg_schema

pytestmark = NEEDS_CHROMIUM
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

API = "/api/v1"
PG_URL = os.environ.get("INTERLOCK_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NS = "shop"
HOSTILE_OUT = "<script>window.__pwned=1</script><img src=x onerror=window.__pwned=2>"
HOSTILE_ERR = "<img src=x onerror=window.__pwned=3>"
FLAKY_MARK = Path(tempfile.gettempdir()) / f"interlock-flaky-{uuid.uuid4().hex}"  # 2nd try ok
TIMED_MARK = Path(tempfile.gettempdir()) / f"interlock-timed-{uuid.uuid4().hex}"  # 2nd try ok
BACKOFF_S = 1
FLOWS = [
    dedent(f"""
        id: slow
        namespace: {NS}
        nodes:
          wait: {{uses: script, with: {{command: ["sleep", "30"]}}, timeout: 1m}}
    """),
    dedent(f"""
        id: quick
        namespace: {NS}
        nodes:
          hello: {{uses: noop, with: {{n: 1}}}}
    """),
    dedent(f"""
        id: boom
        namespace: {NS}
        nodes:
          extract: {{uses: noop, with: {{note: "{HOSTILE_OUT}"}}}}
          load:
            uses: script
            needs: [extract]
            with: {{command: ["sh", "-c", "echo '{HOSTILE_ERR}' >&2; exit 3"]}}
          report: {{uses: noop, needs: [load]}}
    """),
    dedent(f"""
        id: flaky
        namespace: {NS}
        nodes:
          fetch:
            uses: script
            with:
              command: ["sh", "-c", "test -f {FLAKY_MARK} || {{ touch {FLAKY_MARK}; exit 4; }}"]
          publish: {{uses: noop, needs: [fetch]}}
    """),
    dedent(f"""
        id: relay
        namespace: {NS}
        nodes:
          hand_over: {{uses: noop}}
    """),
    dedent(f"""
        id: timed
        namespace: {NS}
        triggers:
          - after: {{flow: relay}}
        nodes:
          fetch:
            uses: script
            with:
              command: ["sh", "-c", "test -f {TIMED_MARK} || {{ touch {TIMED_MARK}; exit 5; }}"]
            retry: {{attempts: 2, backoff: {BACKOFF_S}s}}
          work: {{uses: script, needs: [fetch], with: {{command: ["true"]}}}}
    """),
]


@dataclass
class World:
    base: str
    tokens: dict[str, str]
    api: httpx.Client

    def start(self, flow: str) -> str:
        resp = self.api.post(f"{API}/runs", json={"namespace": NS, "flow_id": flow})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])

    def wait(self, run_id: str, states: set[str], timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run: dict[str, Any] = self.api.get(f"{API}/runs/{run_id}").json()
            if run["state"] in states:
                return run
            assert time.monotonic() < deadline, f"run {run_id} still {run['state']}"
            time.sleep(0.2)


def _token(env: dict[str, str], name: str, role: str) -> str:
    made = interlock("tokens", "create", "--name", name, "--role", role, "--namespace", "*",
                     env=env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A real `interlock serve` on a SQLite file, then on a fresh PostgreSQL schema."""
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    with ExitStack() as stack:
        home = tmp_path_factory.mktemp(f"console-{request.param}")
        env = env_for(home)
        if request.param == "postgresql":
            schema = pg_schema(PG_URL, prefix="console")
            stack.callback(schema.close)  # drops the schema
            env["INTERLOCK_DATABASE_URL"] = next(schema)
        yield from _world(env, home)


def _world(env: dict[str, str], home: Path) -> Iterator[World]:
    tokens = {role: _token(env, f"console-{role}", role)
              for role in ("admin", "operator", "viewer")}
    with serving(env, home / "serve.log") as base:
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {tokens['admin']}"}) as api:
            for source in FLOWS:
                assert api.post(f"{API}/flows", json={"source": source}).status_code == 201
            yield World(base, tokens, api)


def test_a_refused_token_is_said_so_and_a_good_one_logs_in(page: Any, world: World) -> None:
    page.goto(world.base + "/")
    page.get_by_test_id("token").fill("ilk_nope_nope")
    page.get_by_test_id("login").click()
    assert "refused" in page.get_by_test_id("login-error").inner_text()
    login(page, world, "viewer")
    assert page.get_by_test_id("who").inner_text() == "user:console-viewer"
    assert page.evaluate("sessionStorage.getItem('interlock.token')") == world.tokens["viewer"]
    page.get_by_test_id("logout").click()
    page.get_by_test_id("token").wait_for()
    assert page.evaluate("sessionStorage.getItem('interlock.token')") is None
    # Logging out closed the page's stream: the viewer may open its whole allowance again.
    # (The server notices the gone client within a tick: tried again until it has.)
    deadline = time.monotonic() + 15
    while True:
        with ExitStack() as streams:
            codes = [streams.enter_context(httpx.stream(
                "GET", f"{world.base}{API}/stream/runs", timeout=10,
                headers={"Authorization": f"Bearer {world.tokens['viewer']}"})).status_code
                for _ in range(PER_PRINCIPAL)]
        if codes == [200] * PER_PRINCIPAL or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert codes == [200] * PER_PRINCIPAL


def test_a_new_run_appears_in_the_list_without_reload_or_polling(
        page: Any, world: World) -> None:
    login(page, world, "viewer")
    page.get_by_test_id("runs").or_(page.get_by_text("No runs match.")).first.wait_for()
    page.evaluate("window.__same_page = true")
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if API in r.url else None)
    started = time.monotonic()
    run_id = world.start("quick")
    page.locator(f"tr[data-run='{run_id}']").wait_for()
    print(f"run in the list {time.monotonic() - started:.2f}s after it was started")
    page.locator(f"tr[data-run='{run_id}'] .s-succeeded").wait_for()
    assert page.evaluate("window.__same_page") is True  # no reload
    assert calls == []  # the stream opened before; nothing polled since


def test_a_viewer_sees_no_cancel_button_and_the_api_refuses_it(
        page: Any, world: World) -> None:
    run_id = world.start("slow")
    world.wait(run_id, {"running"})
    login(page, world, "viewer")
    page.goto(f"{world.base}/runs/{run_id}")
    page.get_by_test_id("run-state").wait_for()
    page.locator("[data-node='wait']").wait_for()
    assert page.get_by_test_id("cancel").count() == 0
    refused = httpx.post(f"{world.base}{API}/runs/{run_id}/cancel",
                         headers={"Authorization": f"Bearer {world.tokens['viewer']}"})
    assert refused.status_code == 403 and "runs:cancel" in refused.text
    page.get_by_test_id("logout").click()

    login(page, world, "operator")
    page.goto(f"{world.base}/runs/{run_id}")
    page.get_by_test_id("cancel").click()
    assert "cancel requested" in page.get_by_test_id("notice").inner_text()
    page.locator("[data-testid=run-state].s-cancelled").wait_for(timeout=30_000)  # live
    assert page.get_by_test_id("cancel").count() == 0


def test_a_failed_node_opens_its_root_cause_and_hostile_values_stay_text(
        page: Any, world: World) -> None:
    run_id = world.start("boom")
    world.wait(run_id, {"failed"})
    login(page, world, "operator")
    started = time.monotonic()
    page.goto(f"{world.base}/runs/{run_id}")
    page.locator("[data-node='report'].s-skipped").wait_for()
    print(f"run page with its laid-out graph in {time.monotonic() - started:.2f}s")
    assert page.locator("[data-node='load']").get_attribute("class").count("s-failed") == 1
    assert "succeeded" in page.locator("[data-node='extract']").inner_text()
    page.locator("[data-node='load'] button").click()
    panel = page.get_by_test_id("root-cause")
    assert panel.get_by_test_id("root-node").inner_text() == "load"
    assert "exit code 3" in panel.get_by_test_id("root-error").inner_text()
    assert HOSTILE_ERR in panel.get_by_test_id("root-log").inner_text()  # as text
    page.locator("[data-node='extract'] button").click()
    assert HOSTILE_OUT in page.get_by_test_id("outputs").inner_text()
    assert page.get_by_test_id("retry").is_visible()
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.__pwned") is None


def test_an_operator_retries_a_failed_run_and_sees_it_succeed_live(
        page: Any, world: World) -> None:
    FLAKY_MARK.unlink(missing_ok=True)
    run_id = world.start("flaky")
    world.wait(run_id, {"failed"})
    login(page, world, "operator")
    page.goto(f"{world.base}/runs/{run_id}")
    page.locator("[data-node='publish'].s-skipped").wait_for()
    page.evaluate("window.__same_page = true")
    page.get_by_test_id("retry").click()
    page.locator("[data-testid=run-state].s-succeeded").wait_for(timeout=30_000)  # live
    fetch = page.locator("[data-node='fetch']")
    assert "s-succeeded" in fetch.get_attribute("class")
    assert "attempt 2" in fetch.inner_text()
    assert "s-succeeded" in page.locator("[data-node='publish']").get_attribute("class")
    assert page.evaluate("window.__same_page") is True  # no reload
    assert page.get_by_test_id("retry").count() == 0  # nothing failed any more
    FLAKY_MARK.unlink(missing_ok=True)


def test_the_timeline_draws_each_attempt_and_the_run_that_triggered_it(
        page: Any, world: World) -> None:
    TIMED_MARK.unlink(missing_ok=True)
    relay = world.start("relay")
    deadline = time.monotonic() + 60
    while not (found := world.api.get(f"{API}/runs", params={
            "namespace": NS, "flow_id": "timed"}).json()["runs"]):
        assert time.monotonic() < deadline, "relay's run did not trigger `timed`"
        time.sleep(0.2)
    run_id = str(found[0]["id"])
    assert found[0]["trigger"]["external_id"] == relay
    world.wait(run_id, {"succeeded"})
    TIMED_MARK.unlink(missing_ok=True)
    login(page, world, "viewer")
    page.goto(f"{world.base}/runs/{run_id}")
    page.locator("[data-testid=run-state].s-succeeded").wait_for()
    timeline = page.get_by_test_id("timeline")
    bars = {span: _bar(timeline, span) for span in (
        f"run:{relay}", f"run:{run_id}", f"attempt:{run_id}/fetch/1",
        f"attempt:{run_id}/fetch/2", f"attempt:{run_id}/work/1")}
    upstream = timeline.locator(f"[data-span='run:{relay}']")
    assert "upstream" in str(upstream.get_attribute("class"))
    assert upstream.locator(".tl-label").inner_text().startswith(f"↑ {NS}/relay")
    assert "upstream" not in str(timeline.locator(f"[data-span='run:{run_id}']")
                                 .get_attribute("class"))
    # One bar per attempt: queued then running (coloured by how it ended); the retry's
    # backoff drawn between the failed attempt and the next.
    fetch1, fetch2, work = (bars[f"attempt:{run_id}/{a}"] for a in ("fetch/1", "fetch/2",
                                                                    "work/1"))
    assert [s for s, _, _, _ in fetch1] == ["queued", "running"]
    assert fetch1[1][3] == "s-failed"
    assert [s for s, _, _, _ in fetch2] == ["retry", "queued", "running"]
    assert fetch2[2][3] == "s-succeeded"
    assert [s for s, _, _, _ in work] == ["queued", "running"] and work[1][3] == "s-succeeded"
    # Where each segment is drawn is what the trace's times say, on one scale.
    trace = world.api.get(f"{API}/runs/{run_id}/trace").json()
    spans = {s["id"]: s for s in trace["spans"]}
    t0 = min(_ms(s["queued_at"] or s["started_at"]) for s in spans.values())
    t1 = max(_ms(s["finished_at"]) for s in spans.values())
    first, second = spans[f"attempt:{run_id}/fetch/1"], spans[f"attempt:{run_id}/fetch/2"]
    backoff = (_ms(second["queued_at"]) - _ms(first["finished_at"])) / 1000
    assert backoff >= BACKOFF_S * 0.95, backoff
    expected = [(_ms(first["finished_at"]), _ms(second["queued_at"])),
                (_ms(second["queued_at"]), _ms(second["submitted_at"])),
                (_ms(second["submitted_at"]), _ms(second["finished_at"]))]
    for (_, left, width, _), (a, b) in zip(fetch2, expected, strict=True):
        assert left == pytest.approx((a - t0) / (t1 - t0) * 100, abs=0.05)
        assert width == pytest.approx(max(0.3, (b - a) / (t1 - t0) * 100), abs=0.05)
    assert fetch1[1][1] + fetch1[1][2] == pytest.approx(fetch2[0][1], abs=0.03)  # no gap
    assert bars[f"run:{relay}"][0][1] < fetch1[0][1]  # the upstream run came first


def _bar(timeline: Any, span: str) -> list[tuple[str, float, float, str]]:
    """The segments of one timeline row: (kind, left %, width %, state class)."""
    row = timeline.locator(f"[data-span='{span}']")
    row.wait_for()
    return [(seg, float(left.rstrip("%")), float(width.rstrip("%")), state)
            for seg, left, width, state in row.locator(".tl-seg").evaluate_all(
                "els => els.map(e => [e.dataset.seg, e.style.left, e.style.width, "
                "[...e.classList].find(c => c.startsWith('s-')) || ''])")]


def _ms(at: str) -> float:
    return datetime.fromisoformat(at).timestamp() * 1000


def test_a_viewer_walks_the_graph_by_keyboard_and_may_not_retry(
        page: Any, world: World) -> None:
    run_id = world.start("boom")
    world.wait(run_id, {"failed"})
    login(page, world, "viewer")
    page.goto(f"{world.base}/runs/{run_id}")
    first = page.locator("[data-node='extract'] button")
    first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.get_by_test_id("root-cause").wait_for()  # the failed node's panel is open
    # No retry button for a viewer, and the API refuses the viewer's retry anyway.
    assert page.get_by_test_id("retry").count() == 0
    refused = httpx.post(f"{world.base}{API}/runs/{run_id}/retry",
                         headers={"Authorization": f"Bearer {world.tokens['viewer']}"})
    assert refused.status_code == 403 and "runs:retry" in refused.text
    after = world.api.get(f"{API}/runs/{run_id}").json()
    load = next(n for n in after["nodes"] if n["id"] == "load")
    assert (after["state"], len(load["attempts"])) == ("failed", 1)  # nothing was retried


def test_the_page_headers_forbid_inline_scripts_and_framing(world: World) -> None:
    resp = httpx.get(world.base + "/runs/anything")
    assert resp.status_code == 200 and '<div id="app">' in resp.text
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"


def test_serve_stops_promptly_with_a_stream_open(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    token = _token(env, "streamer", "viewer")
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "interlock", "serve", "--port",
                                 str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_up(base, proc)
            opened = threading.Event()

            def listen() -> None:
                with httpx.stream("GET", f"{base}{API}/stream/runs", timeout=60,
                                  headers={"Authorization": f"Bearer {token}"}) as resp:
                    for _ in resp.iter_lines():
                        opened.set()

            reader = threading.Thread(target=listen, daemon=True)
            reader.start()
            assert opened.wait(15)
            started = time.monotonic()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
            print(f"serve stopped {time.monotonic() - started:.2f}s after SIGTERM")
            reader.join(5)
            assert not reader.is_alive()  # the server ended the stream
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("interlock serve did not start")
