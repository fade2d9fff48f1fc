"""The console on a run that crosses into a real Airflow 3.3 (the harness's server): a DAG
that succeeds, then one whose task raises, then a node that is skipped. In Chromium the run
page shows every node with its state and system, each Airflow node links into Airflow's
own UI, and clicking the failed node opens the root cause with Airflow's error and the
deep link to the failed DAG run; the runs list, filtered by system, shows the run.

Once with a SQLite store and once with the real PostgreSQL (a fresh schema): one `interlock
serve` per store, both driving the same Airflow, their runs started together so Airflow
runs the two stores' DAG runs side by side (the second store adds seconds, not minutes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from textwrap import dedent
from typing import Any

import httpx
import pytest
from airflow_flows import SECRET_ENV, write_systems
from airflow_harness import AirflowServer
from fixtures_browser import NEEDS_CHROMIUM, login
from serving import env_for, interlock, serving

from interlock.console import files
from interlock.testing import pg_schema

pytestmark = [NEEDS_CHROMIUM, pytest.mark.timeout(600)]
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

API = "/api/v1"
NS = "shop.cross"
PG_URL = os.environ.get("INTERLOCK_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORES = ("sqlite", "postgresql")
ENDED = {"failed", "succeeded", "cancelled"}


def flow(system: str) -> str:
    return dedent(f"""
        id: settle
        namespace: {NS}
        nodes:
          screen: {{uses: airflow, with: {{system: {system}, dag_id: interlock_ok}}}}
          settle:
            uses: airflow
            needs: [screen]
            with: {{system: {system}, dag_id: interlock_fail}}
          report: {{uses: noop, needs: [settle]}}
    """)


@dataclass
class World:
    base: str
    tokens: dict[str, str]
    api: httpx.Client
    airflow: AirflowServer
    run_id: str


@pytest.fixture(scope="module")
def worlds(airflow_server: AirflowServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, World]]:
    """A real `interlock serve` per store, each with its run through Airflow, all finished."""
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    with ExitStack() as stack:
        started = time.monotonic()
        made = {store: _world(stack, store, airflow_server, tmp_path_factory)
                for store in STORES}
        deadline, took = started + 300, {}
        for store, world in made.items():
            while (state := world.api.get(f"{API}/runs/{world.run_id}").json()["state"]) \
                    not in ENDED:
                assert time.monotonic() < deadline, f"run still {state}"
                time.sleep(0.5)
            assert state == "failed"
            took[store] = time.monotonic() - started
        print("runs through Airflow finished, from serving: " +
              ", ".join(f"{store} {s:.0f} s" for store, s in took.items()))
        yield made


@pytest.fixture(params=STORES)
def world(request: pytest.FixtureRequest, worlds: dict[str, World]) -> World:
    return worlds[request.param]


def _world(stack: ExitStack, store: str, airflow_server: AirflowServer,
           tmp_path_factory: pytest.TempPathFactory) -> World:
    """`interlock serve` on ``store``, its flow registered and its run started."""
    home = tmp_path_factory.mktemp(f"console-cross-{store}")
    env = env_for(home, INTERLOCK_SYSTEMS=str(write_systems(home, airflow_server)),
                  **{SECRET_ENV: airflow_server.events_secret})
    if store == "postgresql":
        schema = pg_schema(PG_URL, prefix="cross")
        stack.callback(schema.close)  # drops the schema
        env["INTERLOCK_DATABASE_URL"] = next(schema)
    tokens = {}
    for role in ("operator", "admin"):
        made = interlock("tokens", "create", "--name", f"cross-{role}", "--role", role,
                         "--namespace", "*", env=env)
        assert made.returncode == 0, made.stderr
        tokens[role] = made.stdout.strip()
    base = stack.enter_context(serving(env, home / "serve.log"))
    api = stack.enter_context(httpx.Client(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {tokens['admin']}"}))
    assert api.post(f"{API}/flows", json={"source": flow(airflow_server.system)}) \
        .status_code == 201
    started = api.post(f"{API}/runs", json={"namespace": NS, "flow_id": "settle"})
    assert started.status_code == 201, started.text
    return World(base, tokens, api, airflow_server, started.json()["id"])


def test_a_failed_cross_system_run_shows_its_nodes_and_the_root_cause_in_airflow(
        page: Any, world: World) -> None:
    login(page, world, "operator")
    page.goto(f"{world.base}/runs/{world.run_id}")
    page.locator("[data-node='report'].s-skipped").wait_for()
    airflow = world.airflow.system
    for node_id, state in (("screen", "succeeded"), ("settle", "failed")):
        box = page.locator(f"[data-node='{node_id}']")
        assert f"s-{state}" in str(box.get_attribute("class"))
        assert airflow in box.inner_text() and "airflow" in box.inner_text()
        link = box.locator("a.node-link").get_attribute("href")
        assert link is not None and link.startswith(world.airflow.url), link  # into Airflow
    page.locator("[data-node='settle'] button").click()
    cause = page.get_by_test_id("root-cause")
    assert airflow in cause.inner_text()
    assert cause.get_by_test_id("root-error").inner_text()  # Airflow's own words
    deep = cause.get_by_test_id("root-link").get_attribute("href")
    assert deep is not None and deep.startswith(world.airflow.url)
    assert "interlock_fail" in deep  # the failed DAG run, not the first one
    assert page.get_by_test_id("retry").is_visible()  # an operator may retry


def test_the_runs_list_filters_by_system(page: Any, world: World) -> None:
    login(page, world, "operator")
    page.goto(f"{world.base}/?system={world.airflow.system}")
    page.locator(f"tr[data-run='{world.run_id}']").wait_for()
    page.get_by_test_id("filter-system").fill("dagster/elsewhere")
    page.get_by_test_id("filter-system").press("Enter")
    page.get_by_text("No runs match.").wait_for()
    assert page.locator(f"tr[data-run='{world.run_id}']").count() == 0
    listed = world.api.get(f"{API}/runs", params={"system": world.airflow.system}).json()
    assert [r["id"] for r in listed["runs"]] == [world.run_id]

