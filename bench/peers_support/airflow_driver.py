"""Driver: Airflow 3.3 (`airflow standalone` from tests/airflow_harness.py), LocalExecutor,
its metadata database the PostgreSQL database it is given, a DAG of 3 chained tasks
(`airflow_dags/peers_noop.py`) triggered through `POST /api/v2/dags/{id}/dagRuns`, keeping
at most ``--inflight`` DAG runs unfinished.

The harness's server, with three changes made through its environment: the metadata
database (PostgreSQL instead of SQLite, hence a venv with the postgres provider), the
executor named explicitly (LocalExecutor, as the harness gets by default), and no plugins
(the Interlock listener and the OpenLineage provider would add work to every task).

    python bench/peers_support/airflow_driver.py --duration 60 \\
        --db-url postgresql+psycopg2://postgres@127.0.0.1:5432/DB [--inflight 16]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "tests"))
sys.path.insert(0, str(HERE.parents[1]))

from airflow_harness import AirflowHarnessError, AirflowServer  # noqa: E402

from peers_support.protocol import emit, result  # noqa: E402
from peers_support.venvs import airflow_venv  # noqa: E402

DAG_ID = "peers_noop"


class PeersAirflow(AirflowServer):
    def __init__(self, home: Path, *, db_url: str, parallelism: int, inflight: int) -> None:
        super().__init__(home, airflow_venv(), dags_folder=HERE / "airflow_dags",
                         plugins_folder=HERE / "airflow_plugins")
        self.db_url, self.parallelism, self.inflight = db_url, parallelism, inflight

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
                    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                    "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                    "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": str(self.inflight),
                    "AIRFLOW__OPENLINEAGE__DISABLED": "True"})
        return env

    def wait_ready(self, timeout: float = 600.0) -> None:
        """Healthy (database, scheduler, DAG processor) and the bench DAG parsed."""
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                raise AirflowHarnessError(f"airflow standalone exited:\n{self.log_tail()}")
            try:
                health = self.api("GET", "/api/v2/monitor/health").json()
                sick = [p for p in ("metadatabase", "scheduler", "dag_processor")
                        if (health.get(p) or {}).get("status") != "healthy"]
                dag = self.api("GET", f"/api/v2/dags/{DAG_ID}").status_code
                last = f"unhealthy {sick}, DAG -> {dag}"
                if not sick and dag == 200:
                    return
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(2)
        raise AirflowHarnessError(f"Airflow not ready after {timeout:.0f} s ({last}):\n"
                                  f"{self.log_tail()}")


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-peers-airflow-"))
    server = PeersAirflow(home, db_url=args.db_url, parallelism=args.parallelism,
                          inflight=args.inflight)
    started = time.monotonic()
    server.start()
    try:
        server.wait_ready()
        emit("note", text=f"Airflow ready {time.monotonic() - started:.0f} s after start "
                          "(PostgreSQL migration included)")
        server.unpause(DAG_ID)
        # One run first, outside the window: the first tasks after a start wait ~12 s on a
        # cold execution API (seen as 400s and retries in the log), which no steady state has.
        warm = time.monotonic()
        run = server.trigger(DAG_ID, run_id=f"warmup__{secrets.token_hex(6)}")
        server.wait_dag_run(DAG_ID, run["dag_run_id"], timeout=300)
        emit("note", text=f"Airflow warm-up run (not counted) took {time.monotonic() - warm:.0f} s")
        _measure(server, args)
    finally:
        server.stop()


def _measure(server: PeersAirflow, args: argparse.Namespace) -> None:
    slots = threading.Semaphore(args.inflight)
    stop = threading.Event()
    triggered: list[str] = []

    def submitter() -> None:
        with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
            while not stop.is_set():
                if slots.acquire(timeout=0.5):
                    body = {"dag_run_id": f"peers__{secrets.token_hex(6)}",
                            "logical_date": None, "conf": {}}
                    client.post(f"/api/v2/dags/{DAG_ID}/dagRuns", json=body).raise_for_status()
                    triggered.append(body["dag_run_id"])

    def finished(client: httpx.Client) -> int:
        page = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns",
                          params={"state": ["success", "failed"], "limit": 1}).json()
        return int(page["total_entries"])

    emit("window")
    threads = [threading.Thread(target=submitter, daemon=True) for _ in range(args.submitters)]
    for t in threads:
        t.start()
    with httpx.Client(base_url=server.url, timeout=60, trust_env=False) as client:
        seen, deadline = finished(client), time.monotonic() + args.duration
        while time.monotonic() < deadline:
            done = finished(client)
            for _ in range(done - seen):
                slots.release()
            seen = done
            time.sleep(0.25)
        stop.set()
        for t in threads:
            t.join()
        drain = time.monotonic() + 120
        while finished(client) < len(triggered) + 1 and time.monotonic() < drain:
            time.sleep(0.5)
        runs = [r for r in _all_runs(client) if str(r["dag_run_id"]).startswith("peers__")]
    _report(runs, args.duration)


def _all_runs(client: httpx.Client) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = []
    while True:
        page = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns",
                          params={"limit": 100, "offset": len(runs)}).json()
        runs.extend(page["dag_runs"])
        if not page["dag_runs"] or len(runs) >= page["total_entries"]:
            return runs


def _report(runs: list[dict[str, object]], duration: float) -> None:
    def at(value: object) -> datetime:
        return datetime.fromisoformat(str(value))

    first = min(at(r["queued_at"]) for r in runs)
    done = [r for r in runs if r.get("end_date")]
    ok = [r for r in done if r["state"] == "success"]
    result(runs_in_window=sum((at(r["end_date"]) - first).total_seconds() <= duration
                              for r in ok),
           duration=duration, started=len(runs), failed=len(done) - len(ok),
           latencies=[(at(r["end_date"]) - at(r["queued_at"])).total_seconds() for r in ok])


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--submitters", type=int, default=2)
    return parser.parse_args()


if __name__ == "__main__":
    main()
