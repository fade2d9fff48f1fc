"""The same workload on Interlock and its peers, one after another, on this machine.

A flow of three chained no-op steps (a -> b -> c, each passing a number on) run as fast as
each system takes it, for a window of --duration seconds per system:

  interlock  Celery on Redis + PostgreSQL, 2 workers (bench/throughput.py, unchanged)
  embedded   Interlock embedded: SQLite, dispatcher threads in one process, no services
  prefect    Prefect 3.9: `prefect server start` on PostgreSQL, N client processes calling
             a flow of 3 tasks (N: the best of a short sweep in round 1)
  airflow    Airflow 3.3: `airflow standalone` (tests/airflow_harness.py), LocalExecutor,
             PostgreSQL metadata database, a DAG of 3 tasks triggered through the REST API

Each system runs alone (the others stopped), with a fresh PostgreSQL database created and
dropped around it; every system runs twice, the second round in reverse order. Printed per
system: runs/s, p50/p99 start->finish, CPU seconds per run (its processes and its
database's backends, from /proc, over the window), the ratio to Interlock and the spread
between rounds. Peers are installed once into cached virtualenvs (~/.cache/interlock).

    python bench/peers.py                      # 60 s windows, 2 rounds, all systems
    python bench/peers.py --quick              # 15 s windows
    python bench/peers.py --systems interlock prefect --rounds 1 --write-doc
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from peers_support import report  # noqa: E402
from peers_support.cpu import CpuMeter  # noqa: E402
from peers_support.protocol import parse  # noqa: E402
from peers_support.venvs import airflow_venv, marker_note, prefect_venv  # noqa: E402

SYSTEMS = ("interlock", "embedded", "prefect", "airflow")
DRIVERS = HERE / "peers_support"


@dataclass
class Measurement:
    system: str
    round: int
    result: dict[str, Any] = field(default_factory=dict)
    cpu: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None


def main() -> None:
    args = _args()
    uptime_before = _uptime()
    print(f"uptime before: {uptime_before}", flush=True)
    installs = _install(args.systems)
    prefect_clients = args.prefect_clients
    measurements: list[Measurement] = []
    for rnd in range(1, args.rounds + 1):
        order = args.systems if rnd % 2 else list(reversed(args.systems))
        for system in order:
            m = _run(system, rnd, args, prefect_clients)
            measurements.append(m)
            print(report.line(m), flush=True)
            if system == "prefect" and m.result.get("config") and not prefect_clients:
                prefect_clients = int(str(m.result["config"]).split()[0])
    uptime_after = _uptime()
    (args.logs / "measurements.json").write_text(
        json.dumps([asdict(m) for m in measurements], indent=1, default=str))
    table = report.table(measurements, args.systems)
    context = report.Context(
        date=datetime.now(UTC).date().isoformat(), duration=args.duration, rounds=args.rounds,
        uptime_before=uptime_before, uptime_after=uptime_after, installs=installs,
        command=" ".join(["python bench/peers.py", *sys.argv[1:]]))
    print()
    print(table)
    print()
    for note in report.notes(measurements):
        print(f"- {note}")
    print(f"\nuptime after: {uptime_after}")
    if args.write_doc:
        report.write_doc(ROOT / "docs" / "benchmarks.md", table, measurements, context)
        print("wrote the Peers section of docs/benchmarks.md")


def _install(systems: list[str]) -> dict[str, str]:
    """Install (or find) the peers' virtualenvs; {system: what the ready marker says}."""
    found = {}
    for system, ensure in (("prefect", prefect_venv), ("airflow", airflow_venv)):
        if system in systems:
            started = time.monotonic()
            try:
                venv = ensure()
                found[system] = (f"{marker_note(venv)} (this run: "
                                 f"{time.monotonic() - started:.0f} s)")
            except Exception as exc:  # reported per system when its driver fails again
                found[system] = f"install failed: {exc}"
            print(f"{system} venv: {found[system]}", flush=True)
    return found


def _run(system: str, rnd: int, args: argparse.Namespace,
         prefect_clients: int) -> Measurement:
    m = Measurement(system, rnd)
    database = None if system == "embedded" else f"peers_{system}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{args.pg}/{args.admin_db}", isolation_level="AUTOCOMMIT")
    if database:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{database}"'))
    log = args.logs / f"{system}-{rnd}.log"
    print(f"[round {rnd}] {system}: starting (log {log})", flush=True)
    try:
        _drive(m, _command(system, args, database, prefect_clients), database, log, args)
    except Exception as exc:
        m.error = f"{type(exc).__name__}: {exc}"
    finally:
        if database:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    return m


def _command(system: str, args: argparse.Namespace, database: str | None,
             prefect_clients: int) -> list[str]:
    py, d = sys.executable, str(args.duration)
    pg = f"{args.pg}/{database}"
    if system == "interlock":
        return [py, str(DRIVERS / "interlock_celery.py"), "--duration", d,
                "--pg", pg.replace("postgresql://", "postgresql+psycopg://"),
                "--redis", args.redis, "--workers", "2",
                "--concurrency", str(args.interlock_threads),
                "--inflight", str(args.interlock_inflight),
                "--submitters", str(args.interlock_submitters)]
    if system == "embedded":
        return [py, str(DRIVERS / "interlock_embedded.py"), "--duration", d,
                "--threads", str(args.embedded_threads),
                "--inflight", str(args.embedded_inflight)]
    if system == "prefect":
        return [py, str(DRIVERS / "prefect_driver.py"), "--duration", d,
                "--db-url", pg.replace("postgresql://", "postgresql+asyncpg://"),
                "--clients", str(prefect_clients), "--sweep", *map(str, args.prefect_sweep),
                "--sweep-seconds", str(args.prefect_sweep_seconds)]
    return [py, str(DRIVERS / "airflow_driver.py"), "--duration", d,
            "--db-url", pg.replace("postgresql://", "postgresql+psycopg2://"),
            "--inflight", str(args.airflow_inflight),
            "--parallelism", str(args.airflow_parallelism)]


def _drive(m: Measurement, cmd: list[str], database: str | None, log: Path,
           args: argparse.Namespace) -> None:
    """Run one driver; count its CPU from its ``window`` event for --duration seconds."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
    meter = CpuMeter(proc.pid, database=database)
    timer: threading.Timer | None = None

    def close_window() -> None:
        m.cpu = meter.end_window()

    assert proc.stdout is not None
    for line in proc.stdout:
        event = parse(line)
        if event is None:
            continue
        if event["event"] == "window":
            meter.start_window()
            timer = threading.Timer(args.duration, close_window)
            timer.start()
        elif event["event"] == "result":
            m.result = event
        elif event["event"] == "note":
            m.notes.append(event["text"])
            print(f"  {m.system}: {event['text']}", flush=True)
    proc.wait()
    if timer is not None:
        timer.join()
    if proc.returncode != 0 or not m.result:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        m.error = (f"driver exited {proc.returncode}; log {log}:\n    "
                   + "\n    ".join(tail))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="window per system (s)")
    parser.add_argument("--quick", action="store_true", help="15 s windows, 6 s sweep steps")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432",
                        help="PostgreSQL server; each system gets a database of its own")
    parser.add_argument("--admin-db", default="test", help="database to create them from")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--interlock-threads", type=int, default=8, help="per worker")
    parser.add_argument("--interlock-inflight", type=int, default=50)
    parser.add_argument("--interlock-submitters", type=int, default=8,
                        help="threads starting runs (what the API does in a deployment)")
    parser.add_argument("--embedded-threads", type=int, default=4)
    parser.add_argument("--embedded-inflight", type=int, default=20)
    parser.add_argument("--prefect-clients", type=int, default=0, help="0: sweep in round 1")
    parser.add_argument("--prefect-sweep", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    parser.add_argument("--prefect-sweep-seconds", type=float, default=10.0)
    parser.add_argument("--airflow-inflight", type=int, default=16)
    parser.add_argument("--airflow-parallelism", type=int, default=4)
    parser.add_argument("--logs", type=Path, default=None, help="drivers' logs (a temp dir)")
    parser.add_argument("--write-doc", action="store_true",
                        help="write the table into the Peers section of docs/benchmarks.md")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.prefect_sweep_seconds = 15.0, 6.0
    if args.logs is None:
        import tempfile
        args.logs = Path(tempfile.mkdtemp(prefix="interlock-peers-logs-"))
    args.logs.mkdir(parents=True, exist_ok=True)
    return args


if __name__ == "__main__":
    main()
