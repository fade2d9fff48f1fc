"""The console's lineage map in a real browser: Debian's Chromium driven by Playwright against
one real `interlock serve` subprocess (SQLite) holding a graph of 5,000 nodes, the API's cap
on one graph (20 layers of 125 jobs across Airflow, Dagster, Interlock and cron, each writing
a dataset of one of three namespaces and reading two of the layer before, but the last job,
a report that writes nothing), all downstream of one raw dataset.

The map of all of it paints (first paint printed, measured in the browser), pans by mouse
and keyboard (frame times printed), zooms, and keeps the page small: no element per node
when zoomed out, only the nodes on screen when zoomed in. Search finds a node and shows it;
a system collapses into one box and expands again; a selected node lights up as many nodes
upstream and downstream as `GET /lineage/impact` names; a dataset shows its history (runs
posted as OpenLineage events); a job named `<img src=x onerror=...>` is text. Needs
`/usr/bin/chromium` and the built console, as `test_console_browser.py`.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fixtures_browser import NEEDS_CHROMIUM, login
from serving import env_for, serving

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.console import files
from interlock.store.db import dispose_all, session_scope
from interlock.store.tables.lineage import DATASETS, EDGES, JOBS

pytestmark = NEEDS_CHROMIUM
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

API = "/api/v1"
LAYERS, WIDTH = 20, 125
SINK = (LAYERS - 1, WIDTH - 1)  # a report that only reads: 1 + 2 x 20 x 125 - 1 = 5,000 nodes
HOSTILE = "<img src=x onerror=window.__pwned=1>"
ROOT = ("s3://landing", "raw/events")
# (first layer, system = job namespace, job name): bands of layers per system
BANDS = [(0, "airflow/prod", "ingest_l{l}.task_{j}"), (5, "dagster/main", "asset_l{l}_{j}"),
         (9, "interlock", "shop/flow_l{l}.node_{j}"), (12, "cron/db1", "export_l{l}_{j}"),
         (15, "dagster/analytics", "model_l{l}_{j}")]
STORES = [(0, "s3://landing"), (5, "postgres://warehouse:5432"), (12, "snowflake://acct/analytics")]
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


@dataclass
class Estate:
    jobs: list[tuple[str, str, str]] = field(default_factory=list)  # namespace, name, system
    datasets: list[tuple[str, str]] = field(default_factory=list)   # namespace, name
    edges: set[tuple[int, str, int]] = field(default_factory=set)   # job, in/out, dataset (0-based)

    def job_id(self, j: int) -> str:
        return f"job:{self.jobs[j][0]}:{self.jobs[j][1]}"

    def dataset_id(self, d: int) -> str:
        return f"dataset:{self.datasets[d][0]}:{self.datasets[d][1]}"

    def walk(self, job: int, way: str) -> set[str]:
        """Node ids upstream (`up`) or downstream of a job, following the data."""
        reads: dict[int, set[int]] = {}
        writes: dict[int, set[int]] = {}
        for j, d, ds in self.edges:
            (reads if d == "in" else writes).setdefault(j, set()).add(ds)
        readers: dict[int, set[int]] = {}
        writers: dict[int, set[int]] = {}
        for j, ds_set in reads.items():
            for ds in ds_set:
                readers.setdefault(ds, set()).add(j)
        for j, ds_set in writes.items():
            for ds in ds_set:
                writers.setdefault(ds, set()).add(j)
        near, far = (reads, writers) if way == "up" else (writes, readers)
        jobs, datasets, todo = set(), set(), [job]
        while todo:
            for ds in near.get(todo.pop(), set()) - datasets:
                datasets.add(ds)
                for j in far.get(ds, set()) - jobs:
                    jobs.add(j)
                    todo.append(j)
        return {self.job_id(j) for j in jobs - {job}} | {self.dataset_id(d) for d in datasets}

    @property
    def nodes(self) -> int:
        return len(self.jobs) + len(self.datasets)


def build() -> Estate:
    rng = random.Random(17)
    estate = Estate(datasets=[ROOT])
    layers: list[list[int]] = [[0]]
    for layer in range(LAYERS):
        _, system, name = next(b for b in reversed(BANDS) if layer >= b[0])
        store = next(s for first, s in reversed(STORES) if layer >= first)
        outputs = []
        for j in range(WIDTH):
            job_name = HOSTILE if (layer, j) == (2, 5) else name.format(l=layer, j=j)
            estate.jobs.append((system, job_name, system))
            job = len(estate.jobs) - 1
            reads = set(rng.sample(layers[-1], min(2, len(layers[-1]))))
            if layer >= 3 and rng.random() < 0.2:
                reads.add(rng.choice(layers[-3]))
            estate.edges |= {(job, "in", d) for d in reads}
            if (layer, j) == SINK:
                continue
            estate.datasets.append((store, f"l{layer}.t{j}"))
            out = len(estate.datasets) - 1
            estate.edges.add((job, "out", out))
            outputs.append(out)
        layers.append(outputs)
    return estate


def seed(url: str, estate: Estate) -> dict[str, str]:
    """The estate in bulk through the store's own tables (ids 1.. in list order), and
    tokens for an admin and a viewer."""
    now = T0 - timedelta(days=1)
    with session_scope(url) as session:
        session.execute(JOBS.insert(), [
            {"id": i + 1, "namespace": ns, "name": n, "system": s, "facets": {},
             "created_at": now, "updated_at": now} for i, (ns, n, s) in enumerate(estate.jobs)])
        session.execute(DATASETS.insert(), [
            {"id": i + 1, "namespace": ns, "name": n, "facets": {}, "created_at": now,
             "updated_at": now} for i, (ns, n) in enumerate(estate.datasets)])
        session.execute(EDGES.insert(), [
            {"job_id": j + 1, "direction": d, "dataset_id": ds + 1, "source": "observed",
             "first_seen": now, "last_seen": now} for j, d, ds in sorted(estate.edges)])
        made = {who: tokens.create(session, name=f"lineage-{who}", role=role, namespace="*",
                                   created_by="tests")[0]
                for who, role in (("admin", Role.ADMIN), ("viewer", Role.VIEWER))}
    dispose_all()
    return made


def _event(job: tuple[str, str, str], *, at: datetime, inputs: tuple[tuple[str, str], ...] = (),
           outputs: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": at.isoformat(), "producer": PRODUCER,
            "schemaURL": SCHEMA, "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": job[0], "name": job[1]},
            "inputs": [{"namespace": n, "name": d} for n, d in inputs],
            "outputs": [{"namespace": n, "name": d} for n, d in outputs]}


@dataclass
class World:
    base: str
    tokens: dict[str, str]
    api: httpx.Client
    estate: Estate
    history: tuple[int, int, int]  # the dataset with runs, its writer, one reader

    def map_url(self, node: str, depth: int = 20) -> str:
        return f"{self.base}/lineage?{urlencode({'node': node, 'depth': depth})}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    home = tmp_path_factory.mktemp("console-lineage")
    env = env_for(home)
    estate = build()
    assert estate.nodes == 5000  # the API's cap on one graph
    started = time.monotonic()
    made = seed(f"sqlite:///{home / 'interlock.db'}", estate)
    print(f"seeded {estate.nodes} nodes, {len(estate.edges)} edges "
          f"in {time.monotonic() - started:.1f}s")
    dataset = estate.datasets.index(("postgres://warehouse:5432", "l6.t3"))
    writer = next(j for j, d, ds in estate.edges if d == "out" and ds == dataset)
    reader = min(j for j, d, ds in estate.edges if d == "in" and ds == dataset)
    with serving(env, home / "serve.log") as base:
        with httpx.Client(base_url=base, timeout=30, headers={
                "Authorization": f"Bearer {made['admin']}"}) as api:
            d = estate.datasets[dataset]
            for k, event in enumerate([
                    _event(estate.jobs[writer], at=T0, outputs=(d,)),
                    _event(estate.jobs[writer], at=T0 + timedelta(hours=1), outputs=(d,)),
                    _event(estate.jobs[reader], at=T0 + timedelta(hours=2), inputs=(d,))]):
                resp = api.post(f"{API}/lineage", json=event)
                assert resp.status_code == 201, (k, resp.text)
            yield World(base, made, api, estate, (dataset, writer, reader))


# --- helpers in the page ------------------------------------------------------------------

def open_map(page: Any, world: World, node: str) -> dict[str, int]:
    """Logs in as a viewer, opens the map around ``node``; the browser's own timings."""
    login(page, world, "viewer")
    page.goto(world.map_url(node))
    host = page.locator("[data-testid=lin-map][data-paint-ms]")
    host.wait_for(timeout=30_000)
    return {k: int(host.get_attribute(f"data-{k}-ms") or -1)
            for k in ("paint", "load", "fetch", "build", "layout", "draw")}


def data(page: Any, name: str) -> str:
    return str(page.get_by_test_id("lin-map").get_attribute(f"data-{name}"))


def settled(page: Any) -> None:
    """Two animation frames: whatever the map was asked to draw is drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def show(page: Any, text: str, node: str, kind: str = "") -> Any:
    """Finds ``node`` by ``text`` in the search box, shows it; its button on the map."""
    page.get_by_test_id("lin-search-kind").select_option(kind)
    page.get_by_test_id("lin-search").fill(text)
    page.locator(f"[data-testid=lin-results] li{of(node)}").get_by_test_id("lin-show").click()
    button = page.locator(f".lin-node{of(node)}")
    button.wait_for()
    return button


def of(node: str) -> str:
    """A CSS selector part for the element of ``node`` (any characters, quoted)."""
    quoted = node.replace("\\", "\\\\").replace('"', '\\"')
    return f'[data-node="{quoted}"]'


PAN = """async (frames) => {
  const host = document.querySelector('[data-testid=lin-map]');
  const r = host.getBoundingClientRect();
  const x0 = r.left + r.width / 2, y0 = r.top + r.height / 2;
  const fire = (type, x, y) => host.dispatchEvent(new PointerEvent(type, {
    pointerId: 7, bubbles: true, clientX: x, clientY: y, button: 0, buttons: 1, isPrimary: true}));
  const before = [+host.dataset.frames, +host.dataset.framesMs];
  const layer = () => document.querySelector('.lin-world').style.transform;
  const from = layer();
  fire('pointerdown', x0, y0);
  const stamps = [performance.now()];
  for (let i = 1; i <= frames; i++) {
    fire('pointermove', x0 - i * 9, y0 - i * 4);
    await new Promise(requestAnimationFrame);
    stamps.push(performance.now());
  }
  fire('pointerup', x0 - frames * 9, y0 - frames * 4);
  return {gaps: stamps.slice(1).map((t, i) => t - stamps[i]),
          draws: +host.dataset.frames - before[0], drawMs: +host.dataset.framesMs - before[1],
          from, to: layer()};
}"""


def pan_in_page(page: Any, frames: int = 60) -> dict[str, Any]:
    """Drags the map one step per animation frame, in the page: the real frame-to-frame
    times (what a person panning sees) and the map's own drawing time per frame."""
    got: dict[str, Any] = page.evaluate(PAN, frames)
    assert got["from"] != got["to"], "the map did not move"
    assert got["draws"] >= frames * 0.8, got  # a draw per frame (one may coalesce)
    gaps = sorted(got["gaps"])
    return {"frame_p50": statistics.median(gaps), "frame_max": gaps[-1],
            "draw_avg": got["drawMs"] / max(got["draws"], 1)}


def wait_nodes(page: Any, n: int) -> None:
    """Until the map shows ``n`` boxes (a function: the page's CSP forbids eval)."""
    page.wait_for_function("(n) => document.querySelector('[data-testid=lin-map]')"
                           ".dataset.nodes === n", arg=str(n))


def offset(page: Any) -> tuple[float, float]:
    """Where the map's origin is on screen (its layer's translate, in pixels)."""
    text = page.locator(".lin-world").evaluate("e => e.style.transform")
    x, y = re.match(r"translate\(([-\d.e]+)px, ([-\d.e]+)px\)", text).groups()
    return float(x), float(y)


def node_count(page: Any) -> int:
    return int(page.locator(".lin-node").count())


# --- tests ----------------------------------------------------------------------------------


def test_5000_nodes_paint_pan_zoom_and_only_what_is_on_screen_is_in_the_page(
        page: Any, world: World) -> None:
    root = f"dataset:{ROOT[0]}:{ROOT[1]}"
    page.set_viewport_size({"width": 1600, "height": 1000})
    times = open_map(page, world, root)
    print(f"\nlineage map, {world.estate.nodes} nodes: first paint {times['paint']} ms after "
          f"navigation; {times['load']} ms from asking for the graph to the drawn map: fetched "
          f"and parsed in {times['fetch']} ms, indexed in {times['build']} ms, laid out in the "
          f"worker in {times['layout']} ms, drawn in {times['draw']} ms")
    assert page.get_by_test_id("nav-lineage").is_visible()
    assert data(page, "nodes") == str(world.estate.nodes)
    assert f"{world.estate.nodes} nodes · {len(world.estate.edges)} edges" in \
        page.get_by_test_id("lin-status").inner_text()
    # Zoomed out to the whole graph: every node on screen, drawn on the canvas; no element
    # per node in the page.
    assert data(page, "visible") == str(world.estate.nodes)
    assert node_count(page) == 0
    assert page.evaluate("document.querySelectorAll('*').length") < 600

    panned = pan_in_page(page)
    print(f"pan, all {world.estate.nodes} nodes on screen (canvas): frame p50 "
          f"{panned['frame_p50']:.1f} ms, max {panned['frame_max']:.1f} ms; drawing "
          f"{panned['draw_avg']:.1f} ms a frame")

    # A person's drag with the mouse moves the map by as much.
    map_box = page.get_by_test_id("lin-map").bounding_box()
    cx, cy = map_box["x"] + map_box["width"] / 2, map_box["y"] + map_box["height"] / 2
    before = offset(page)
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 120, cy + 50, steps=8)
    page.mouse.up()
    settled(page)
    after = offset(page)
    assert (after[0] - before[0], after[1] - before[1]) == pytest.approx((120, 50))

    # Zoom: the wheel around the pointer, the keyboard (+, -, 0 fits, arrows pan).
    fit = float(data(page, "scale"))
    page.mouse.wheel(0, -400)
    settled(page)
    assert float(data(page, "scale")) > fit * 1.5
    page.get_by_test_id("lin-map").focus()
    page.keyboard.press("0")
    settled(page)
    assert float(data(page, "scale")) == pytest.approx(fit, rel=0.01)
    page.keyboard.press("+")
    settled(page)
    assert float(data(page, "scale")) == pytest.approx(fit * 1.25, rel=0.01)
    page.keyboard.press("-")
    settled(page)
    assert float(data(page, "scale")) == pytest.approx(fit, rel=0.01)
    before = offset(page)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    settled(page)
    after = offset(page)
    assert (after[0] - before[0], after[1] - before[1]) == pytest.approx((-80, 80))

    # Between: too many nodes on screen for buttons, too large a graph for one bitmap.
    while float(data(page, "scale")) < 0.45:
        page.keyboard.press("+")
        settled(page)
    panned = pan_in_page(page)
    mode = f"{data(page, 'dom')} buttons" if node_count(page) else "labelled on the canvas"
    print(f"pan at {float(data(page, 'scale')):.0%} zoom ({data(page, 'visible')} nodes on "
          f"screen, {mode}): frame p50 {panned['frame_p50']:.1f} ms, max "
          f"{panned['frame_max']:.1f} ms; drawing {panned['draw_avg']:.1f} ms a frame")

    # Search finds a node; Show zooms to it: only the nodes on screen become buttons.
    node = world.estate.job_id(7)
    button = show(page, "ingest_l0.task_7", node)
    assert button.is_visible()
    assert button.locator(".lin-name").inner_text() == "ingest_l0.task_7"
    assert data(page, "scale") == "1.000"
    shown = node_count(page)
    assert 0 < shown <= 150 and data(page, "dom") == str(shown)
    assert shown == int(data(page, "visible"))
    assert page.evaluate("document.querySelectorAll('*').length") < 600 + 3 * shown

    on_screen = set(page.locator(".lin-node").evaluate_all("els => els.map(e => e.dataset.node)"))
    panned = pan_in_page(page)
    print(f"pan at 100% zoom ({shown} node buttons on screen): frame p50 "
          f"{panned['frame_p50']:.1f} ms, max {panned['frame_max']:.1f} ms; drawing "
          f"{panned['draw_avg']:.1f} ms a frame")
    settled(page)
    now_on = set(page.locator(".lin-node").evaluate_all("els => els.map(e => e.dataset.node)"))
    assert now_on and now_on != on_screen  # nodes came on screen, others left the page
    assert node_count(page) <= 150


def test_a_selected_node_lights_up_what_the_api_says_is_upstream_and_downstream(
        page: Any, world: World) -> None:
    root = f"dataset:{ROOT[0]}:{ROOT[1]}"
    open_map(page, world, root)
    job = next(i for i, (_, name, _) in enumerate(world.estate.jobs) if name == "export_l13_40")
    node = world.estate.job_id(job)
    show(page, "export_l13_40", node)
    counts = {}
    for direction in ("upstream", "downstream"):
        impact = world.api.get(f"{API}/lineage/impact",
                               params={"nodeId": node, "direction": direction}).json()
        assert impact["truncated"] is False
        counts[direction] = sum(map(len, impact["jobs"].values())) + len(impact["datasets"])
    assert counts["upstream"] > 100 and counts["downstream"] > 10
    assert int(page.get_by_test_id("lin-upstream").inner_text()) == counts["upstream"]
    assert int(page.get_by_test_id("lin-downstream").inner_text()) == counts["downstream"]
    assert page.get_by_test_id("lin-details-name").inner_text() == "export_l13_40"
    if shots := os.environ.get("INTERLOCK_SCREENSHOTS"):  # the README's picture
        page.screenshot(path=str(Path(shots) / "lineage-impact.png"))
    selected = page.locator(".lin-node.m-sel")
    assert selected.count() == 1 and selected.get_attribute("data-node") == node
    # On screen, each node is marked as the walk says.
    up, down = world.estate.walk(job, "up"), world.estate.walk(job, "down")
    assert (len(up), len(down)) == (counts["upstream"], counts["downstream"])
    marked = dict(page.locator(".lin-node").evaluate_all(
        "els => els.map(e => [e.dataset.node, e.className.split(' ').pop()])"))
    assert marked.pop(node) == "m-sel"
    assert marked == {n: "m-up" if n in up else "m-down" if n in down else "m-dim"
                      for n in marked}

    # Clicking another node's button selects it instead.
    other = next(n for n, c in marked.items() if "m-dim" in c and n.startswith("job:"))
    page.locator(f".lin-node{of(other)}").click()
    page.locator(f".lin-node.m-sel{of(other)}").wait_for()
    assert page.locator(".lin-node.m-sel").count() == 1


def test_a_system_collapses_into_one_box_and_expands_again(page: Any, world: World) -> None:
    open_map(page, world, f"dataset:{ROOT[0]}:{ROOT[1]}")
    total = world.estate.nodes
    airflow = sum(1 for ns, _, _ in world.estate.jobs if ns == "airflow/prod")
    row = page.locator("[data-testid=lin-legend] li[data-group='job:airflow/prod']")
    assert f"{airflow} jobs" in row.inner_text()
    row.get_by_test_id("lin-group-toggle").click()
    wait_nodes(page, total - airflow + 1)
    assert row.get_by_test_id("lin-group-toggle").get_attribute("aria-pressed") == "true"
    assert f"{total - airflow + 1} boxes" in page.get_by_test_id("lin-status").inner_text()

    row.get_by_test_id("lin-group-show").click()  # the box, on the map and selected
    box = page.locator(".lin-node[data-node='group:job:airflow/prod']")
    box.wait_for()
    assert box.locator(".lin-name").inner_text() == "airflow/prod"
    assert box.locator(".lin-sub").inner_text() == f"{airflow} jobs · collapsed"
    assert box.locator(".sr-only").inner_text().strip() == "group"  # read out, not shown
    assert "m-sel" in str(box.get_attribute("class"))
    # Downstream of Airflow's first five layers: everything but them and the raw dataset.
    assert int(page.get_by_test_id("lin-downstream").inner_text()) == total - airflow - 1
    page.get_by_test_id("lin-expand").click()
    wait_nodes(page, total)
    assert row.get_by_test_id("lin-group-toggle").get_attribute("aria-pressed") == "false"

    page.get_by_test_id("lin-collapse-all").click()
    groups = len(BANDS) + len(STORES)
    wait_nodes(page, groups)
    settled(page)
    assert node_count(page) == groups  # few boxes: all buttons, with their labels
    page.get_by_test_id("lin-expand-all").click()
    wait_nodes(page, total)


def test_a_dataset_shows_who_read_and_wrote_it(page: Any, world: World) -> None:
    dataset, writer, reader = world.history
    node = world.estate.dataset_id(dataset)
    open_map(page, world, node)  # its own, smaller graph
    assert page.get_by_test_id("lin-start").inner_text() == node
    show(page, "l6.t3", node, kind="dataset")
    rows = page.get_by_test_id("lin-history-row")
    rows.first.wait_for()
    assert rows.count() == 3
    texts = rows.all_inner_texts()
    assert "read" in texts[0] and world.estate.jobs[reader][1] in texts[0]  # newest first
    assert all("write" in t and world.estate.jobs[writer][1] in t for t in texts[1:])
    assert page.get_by_test_id("lin-details-name").inner_text() == "l6.t3"

    # A job has no history panel; "Open its graph" starts the map from it.
    show(page, world.estate.jobs[writer][1], world.estate.job_id(writer))
    assert page.get_by_test_id("lin-history").count() == 0
    around = world.api.get(f"{API}/lineage", params={"nodeId": world.estate.job_id(writer)})
    page.get_by_test_id("lin-open-selected").click()
    page.wait_for_function("(id) => document.querySelector('[data-testid=lin-start]')"
                           ".textContent === id", arg=world.estate.job_id(writer))
    wait_nodes(page, len(around.json()["graph"]))


def test_a_hostile_job_name_is_shown_as_text(page: Any, world: World) -> None:
    open_map(page, world, f"dataset:{ROOT[0]}:{ROOT[1]}")
    node = f"job:airflow/prod:{HOSTILE}"
    result = page.locator("[data-testid=lin-results] li")
    page.get_by_test_id("lin-search").fill("<img src")
    assert result.first.locator(".lin-result-name").inner_text() == HOSTILE
    button = show(page, "<img src", node)
    assert button.locator(".lin-name").inner_text() == HOSTILE
    assert page.get_by_test_id("lin-details-name").inner_text() == HOSTILE
    assert page.locator("main img, main script").count() == 0
    page.wait_for_timeout(300)  # an onerror would have fired by now
    assert page.evaluate("window.__pwned") is None
