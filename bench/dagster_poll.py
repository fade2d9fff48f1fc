"""Poll load on Dagster: requests per second with N Dagster runs in flight.

Starts a real Dagster 1.13.27 (the test harness) that runs 2 runs at a time, starts
flows whose one `dagster` node launches `interlock_slow_job`, waits until every attempt
is in flight (running or queued in Dagster), then counts the GraphQL requests the adapter
sends to Dagster for --window seconds. Done for each --counts value (default 10 and 50).
Target: one request per system per tick, independent of the number of runs in flight.

    python bench/dagster_poll.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FLOW = """
id: slow-dagster
namespace: bench
nodes:
  slow:
    uses: dagster
    with: {system: dagster/test, job: interlock_slow_job,
           run_config: {ops: {nap: {config: {seconds: 600}}}}}
"""
DAGSTER_YAML = """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config: {dequeue_interval_seconds: 1, max_concurrent_runs: 2}
telemetry: {enabled: false}
"""


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-dagster-poll-"))
    os.environ.update({"INTERLOCK_HOME": str(home),
                       "INTERLOCK_DATABASE_URL": f"sqlite:///{home / 'interlock.db'}"})
    os.environ.pop("INTERLOCK_BROKER_URL", None)
    from dagster_harness import DagsterServer

    (home / "dagster").mkdir()
    (home / "dagster" / "dagster.yaml").write_text(DAGSTER_YAML)
    server = DagsterServer(home / "dagster")
    server.start()
    try:
        server.wait_healthy()
        (home / "systems.yaml").write_text(f"systems:\n  dagster/test: {{url: '{server.url}'}}\n")
        os.environ["INTERLOCK_SYSTEMS"] = str(home / "systems.yaml")
        for count in args.counts:
            _measure(count, args.window, server)
    finally:
        server.stop()


def _measure(count: int, window: float, server: object) -> None:
    from airflow_flows import start
    from interlock_dagster.client import SESSIONS

    from interlock.config.systems import load_systems
    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations import runs as ops
    from interlock.operations.runtime import periodic_jobs

    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    runs = [start(FLOW, dispatcher) for _ in range(count)]
    deadline = time.monotonic() + 300
    while any(ops.get_run(r).nodes[0].state.value != "running" for r in runs):
        assert time.monotonic() < deadline, "attempts did not all get in flight"
        time.sleep(0.5)
    calls = SESSIONS.get(load_systems().get("dagster/test")).calls
    before, t0 = calls.copy(), time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - t0
    polls = calls["Runs"] - before["Runs"]
    total = sum(calls.values()) - sum(before.values())
    print(f"{count:3d} runs in flight: {total} requests in {elapsed:.0f} s = "
          f"{total / elapsed:.2f} req/s, of which {polls} batched status polls "
          f"(`runsOrError` by run ids); target: at most one per system per tick (1 s)")
    for run_id in runs:
        ops.cancel_run(run_id, dispatcher=dispatcher)
    time.sleep(3)
    dispatcher.close()


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--window", type=float, default=60.0)
    return parser.parse_args()


if __name__ == "__main__":
    main()
