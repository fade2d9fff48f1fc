"""Upgrading with workers running: a worker of the previous release keeps working while the
new release migrates the store under it, then a new worker joins; nothing is lost and
nothing runs twice.

The previous release is this repository at the commit before the newest migration was
added (`git archive`), run from its own source tree (PYTHONPATH first, so its modules are
the old ones), against a fresh PostgreSQL schema at its own newest migration. Runs are
started by the old code, then the new code migrates the schema (what the first new
process does when it connects), starts more runs, and a new worker joins. Skipped, with
the reason, when the checkout has no git history to take the previous release from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from interlock.config.env import settings
from interlock.dispatch.celery_app import CeleryDispatcher, app
from interlock.operations import reads
from interlock.operations import runs as ops
from interlock.store.db import MIGRATIONS, dispose_all, engine_for
from interlock.testing import pg_schema
from tests.conftest import PG_URL, REDIS_URL, ROOT
from tests.helpers import wait_run
from tests.workers import WorkerPool, flush_redis_db, kill_leftover_scripts

VERSIONS = Path(MIGRATIONS) / "versions"
NS = "tests.upgrade"
RUNS_EACH = 6


def _newest_migration() -> Path:
    return sorted(p for p in VERSIONS.glob("[0-9]*.py"))[-1]


def _previous_release(into: Path) -> tuple[str, str]:
    """The tree before the newest migration was added, unpacked into ``into``; its commit
    and its newest migration's revision id."""
    newest = _newest_migration().relative_to(ROOT)
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("no git checkout: the previous release cannot be taken from history")
    added = subprocess.run([git, "log", "--diff-filter=A", "--format=%H", "--", str(newest)],
                           cwd=ROOT, capture_output=True, text=True, check=False).stdout.split()
    if not added:
        pytest.skip(f"{newest} is not committed yet, or the history is shallow")
    commit = f"{added[-1]}^"
    archive = subprocess.run([git, "archive", "--format=tar", commit, "src", "adapters"],
                             cwd=ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.skip(f"git archive {commit} failed: {archive.stderr.decode()[:200]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    old_versions = sorted((into / "src/interlock/store/migrations/versions").glob("[0-9]*.py"))
    return commit, old_versions[-1].stem.split("_")[0]


def _revision(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    return str(found)


FLOW = textwrap.dedent(f"""
    id: ledger
    namespace: {NS}
    inputs: {{n: {{type: integer, required: true}}}}
    nodes:
      first:
        uses: script
        with:
          command: ["sh", "-c", "sleep 1; echo \\"$RUN first\\" >> \\"$LEDGER\\""]
          env: {{RUN: "{{{{ run.id }}}}", LEDGER: "{{LEDGER}}"}}
      second:
        uses: script
        needs: [first]
        with:
          command: ["sh", "-c", "echo \\"$RUN second\\" >> \\"$LEDGER\\""]
          env: {{RUN: "{{{{ run.id }}}}", LEDGER: "{{LEDGER}}"}}
""")

OLD_STARTER = """
import json, sys
from interlock.dispatch.celery_app import CeleryDispatcher, app
from interlock.operations import reads
from interlock.operations import runs as ops
ops.register(sys.argv[1])
print(json.dumps([ops.start_run(namespace=sys.argv[2], flow_id="ledger", inputs={"n": i},
                                dispatcher=CeleryDispatcher(app()))
                  for i in range(int(sys.argv[3]))]))
"""


@pytest.fixture
def upgrade_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    schema = pg_schema(PG_URL, prefix="upgrade")
    url = next(schema)
    broker = REDIS_URL.rsplit("/", 1)[0] + "/13"
    flush_redis_db(broker)
    env = {**os.environ, "INTERLOCK_DATABASE_URL": url, "INTERLOCK_BROKER_URL": broker,
           "INTERLOCK_HOME": str(tmp_path / "home"),
           "INTERLOCK_QUEUE": f"q-{uuid.uuid4().hex[:8]}", "INTERLOCK_LEASE_SECONDS": "3"}
    saved = {k: os.environ.get(k) for k in env if k.startswith("INTERLOCK_")}
    os.environ.update({k: v for k, v in env.items() if k.startswith("INTERLOCK_")})
    settings.cache_clear()
    dispose_all()
    try:
        yield env
    finally:
        kill_leftover_scripts(tmp_path / "home" / "attempts")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        settings.cache_clear()
        flush_redis_db(broker)
        schema.close()


def test_an_old_worker_keeps_working_while_the_new_release_migrates_under_it(
        upgrade_env: dict[str, str], tmp_path: Path) -> None:
    old_tree = tmp_path / "previous-release"
    commit, old_head = _previous_release(old_tree)
    new_head = _newest_migration().stem.split("_")[0]
    assert old_head < new_head, (old_head, new_head)
    ledger = tmp_path / "ledger.txt"
    flow = FLOW.replace("{LEDGER}", str(ledger))
    old_env = {**upgrade_env, "PYTHONPATH": f"{old_tree / 'src'}{os.pathsep}"
                                            f"{old_tree / 'adapters'}"}
    probe = subprocess.run([sys.executable, "-c", "import interlock; print(interlock.__file__)"],
                           env=old_env, capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(old_tree)), probe.stdout  # really the old code

    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old_workers = WorkerPool(env=old_env, logs=tmp_path / "old")
    new_workers = WorkerPool(env=upgrade_env, logs=tmp_path / "new")
    try:
        old_workers.start(concurrency=4).wait_ready()
        # 1. The old release registers the flow and starts runs (its schema: old_head).
        started = subprocess.run([sys.executable, "-c", OLD_STARTER, flow, NS, str(RUNS_EACH)],
                                 env=old_env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr[-3000:]
        runs = list(json.loads(started.stdout.strip().splitlines()[-1]))
        assert _revision(upgrade_env["INTERLOCK_DATABASE_URL"]) == old_head
        # 2. The new release connects: it migrates the schema while those runs go on.
        engine_for()
        assert _revision(upgrade_env["INTERLOCK_DATABASE_URL"]) == new_head
        # 3. New runs, sent by the new code, taken by the old worker (the only one).
        runs += [ops.start_run(namespace=NS, flow_id="ledger", inputs={"n": 100 + i},
                               dispatcher=CeleryDispatcher(app())) for i in range(RUNS_EACH)]
        time.sleep(2)
        # 4. A new worker joins; more runs; both kinds of worker share the queue.
        new_workers.start(concurrency=4).wait_ready()
        runs += [ops.start_run(namespace=NS, flow_id="ledger", inputs={"n": 200 + i},
                               dispatcher=CeleryDispatcher(app())) for i in range(RUNS_EACH)]
        states = {run_id: wait_run(run_id, timeout=120).state.value for run_id in runs}
    finally:
        old_workers.stop_all()
        new_workers.stop_all()
    assert set(states.values()) == {"succeeded"}, states
    lines = ledger.read_text().splitlines()
    expected = sorted(f"{r} {node}" for r in runs for node in ("first", "second"))
    assert sorted(lines) == expected  # every node once: none lost, none twice
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*/worker-*.log"))
    assert "Traceback" not in logs, logs[-3000:]
    print(f"previous release {commit} (migration {old_head}) -> {new_head}: "
          f"{len(runs)} runs, {len(lines)} executions, 0 lost, 0 twice")


def test_a_process_of_this_release_runs_on_a_store_a_newer_release_migrated(
        upgrade_env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    """The other half of a rolling upgrade: once the store is at a migration this code does
    not know, a restarted process of this release still starts (migrations only add), and
    says it should be upgraded."""
    url = upgrade_env["INTERLOCK_DATABASE_URL"]
    engine_for()  # this release's newest migration
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    dispose_all()
    with caplog.at_level("WARNING", logger="interlock.store.db"):
        ops.register(FLOW.replace("{LEDGER}", "/dev/null"))  # connects: no migration tried
    assert "newer than this release knows" in caplog.text
    assert _revision(url) == "9999"  # left as the newer release made it
    assert [f.id for f in reads.list_flows() if f.namespace == NS] == ["ledger"]
