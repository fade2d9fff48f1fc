"""Cross-system handoff: an Airflow DAG run ends -> the downstream node is submitted.

Runs a 2-node flow (`airflow` DAG `interlock_ok` -> `noop`) against a real Airflow 3.3.2
started by the test harness, sequentially, and prints the delay from the DAG run's
`end_date` (Airflow's clock) to the downstream attempt's creation (Interlock's clock;
same host): with push (the listener plugin posts to Interlock's API) and with polling
only (the API is not listening, so the plugin's posts fail and are dropped).
Then the overhead of running the DAG through Interlock against triggering it directly.

    python bench/handoff.py                  # 20 runs per mode, its own Airflow
    python bench/handoff.py --runs 5 --airflow-url http://127.0.0.1:18080 \\
        --events-port 18765 --secret devsecret   # reuse a running harness Airflow
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FLOW = """
id: handoff
namespace: bench
nodes:
  dag: {uses: airflow, with: {system: airflow/test, dag_id: interlock_ok}}
  next: {uses: noop, needs: [dag], with: {v: 1}}
"""
DIRECT_FLOW = """
id: one-dag
namespace: bench
nodes:
  dag: {uses: airflow, with: {system: airflow/test, dag_id: interlock_ok}}
"""


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-handoff-"))
    os.environ.update({"INTERLOCK_HOME": str(home),
                       "INTERLOCK_DATABASE_URL": f"sqlite:///{home / 'interlock.db'}"})
    os.environ.pop("INTERLOCK_BROKER_URL", None)
    from airflow_harness import AirflowServer

    server = None
    if args.airflow_url:
        url, events_port, secret = args.airflow_url, args.events_port, args.secret
    else:
        server = AirflowServer(home / "airflow")
        server.start()
        server.wait_healthy()
        server.unpause("interlock_ok")
        url, events_port, secret = server.url, server.events_port, server.events_secret
    (home / "systems.yaml").write_text(
        f"systems:\n  airflow/test:\n    url: {url}\n"
        "    events_secret: {env: HANDOFF_SECRET}\n")
    os.environ.update({"INTERLOCK_SYSTEMS": str(home / "systems.yaml"),
                       "HANDOFF_SECRET": secret})
    try:
        _measure(args.runs, url, events_port)
    finally:
        if server is not None:
            server.stop()


def _measure(runs: int, url: str, events_port: int) -> None:
    import httpx
    from airflow_flows import push_api, start
    from helpers import wait_run

    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations.runtime import periodic_jobs

    airflow = httpx.Client(base_url=url, timeout=30, trust_env=False)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())

    def handoff() -> float:
        detail = wait_run(start(FLOW, dispatcher), timeout=180)
        dag, nxt = (next(n for n in detail.nodes if n.id == i) for i in ("dag", "next"))
        key = dag.attempts[0].key
        end = airflow.get(f"/api/v2/dags/interlock_ok/dagRuns/{key}").json()["end_date"]
        return (nxt.attempts[0].created_at - datetime.fromisoformat(end)).total_seconds()

    with push_api(events_port, dispatcher):
        push = [handoff() for _ in range(runs)]
        through = [_through_interlock(dispatcher, airflow) for _ in range(runs)]
    poll = [handoff() for _ in range(runs)]
    direct = [_direct(airflow) for _ in range(runs)]
    dispatcher.close()
    _report("push", push)
    _report("polling only", poll)
    overheads = [(flow - dag) / dag for flow, dag in through]
    print(f"overhead (flow run wall time vs its DAG run's own queued->end), median of {runs}: "
          f"{100 * statistics.median(overheads):+.1f} %, worst {100 * max(overheads):+.1f} % "
          f"(target <= 5 %); flow {statistics.median(f for f, _ in through):.3f} s, "
          f"DAG {statistics.median(d for _, d in through):.3f} s")
    print(f"for reference, trigger + watch every 0.25 s from a client: "
          f"{statistics.median(direct):.3f} s")


def _through_interlock(dispatcher: object, airflow: object) -> tuple[float, float]:
    """(flow run created -> finished, its DAG run's queued_at -> end_date), push on."""
    import httpx
    from airflow_flows import start
    from helpers import wait_run
    assert isinstance(airflow, httpx.Client)
    detail = wait_run(start(DIRECT_FLOW, dispatcher), timeout=180)  # type: ignore[arg-type]
    assert detail.finished_at is not None
    key = detail.nodes[0].attempts[0].key
    dag = airflow.get(f"/api/v2/dags/interlock_ok/dagRuns/{key}").json()
    dag_s = (datetime.fromisoformat(dag["end_date"])
             - datetime.fromisoformat(dag["queued_at"])).total_seconds()
    return (detail.finished_at - detail.created_at).total_seconds(), dag_s


def _direct(airflow: object) -> float:
    """Trigger through the REST API, then watch it as a client would (every 0.25 s)."""
    import httpx
    assert isinstance(airflow, httpx.Client)
    t0 = time.monotonic()
    run = airflow.post("/api/v2/dags/interlock_ok/dagRuns",
                       json={"logical_date": None, "conf": {}}).json()
    path = f"/api/v2/dags/interlock_ok/dagRuns/{run['dag_run_id']}"
    while airflow.get(path).json()["state"] not in ("success", "failed"):
        time.sleep(0.25)
    return time.monotonic() - t0


def _report(mode: str, delays: list[float]) -> None:
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"handoff with {mode:13s}: n={len(delays)} p50 {1000 * statistics.median(delays):7.0f}"
          f" ms  p99 {1000 * p99:7.0f} ms  max {1000 * ordered[-1]:7.0f} ms")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--airflow-url", help="a running harness Airflow instead of a new one")
    parser.add_argument("--events-port", type=int, default=0)
    parser.add_argument("--secret", default="")
    return parser.parse_args()


if __name__ == "__main__":
    main()
