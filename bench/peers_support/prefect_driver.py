"""Driver: Prefect 3.9 (`prefect server start` on a free loopback port, its database the
PostgreSQL database it is given), client processes calling a flow of 3 chained tasks.

With ``--clients 0`` it first sweeps the client counts in ``--sweep`` (``--sweep-seconds``
each, same server) and measures with the best; the figures and the sweep are reported in
the peers protocol.

    python bench/peers_support/prefect_driver.py --duration 60 \\
        --db-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB [--clients 0 --sweep 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from harness_process import free_port, stop_session, tail, venv_environment  # noqa: E402

from peers_support.protocol import emit, result  # noqa: E402
from peers_support.venvs import PeerInstallError, prefect_venv  # noqa: E402


def main() -> None:
    args = _args()
    venv = prefect_venv()
    home = Path(tempfile.mkdtemp(prefix="interlock-peers-prefect-"))
    port = free_port()
    env = venv_environment(venv, "PREFECT")
    env.update({"PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
                "PREFECT_API_DATABASE_CONNECTION_URL": args.db_url,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "NO_COLOR": "1"})
    log = home / "server.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [str(venv / "bin" / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(port), "--no-ui", "--analytics-off"],
            env=env, cwd=home, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_healthy(port, server, log)
        clients = args.clients or _sweep(args, venv, env, home)
        calls = _run_clients(clients, args.duration, venv, env, home,
                             on_go=lambda: emit("window"))
        _report(calls, args.duration, clients)
    finally:
        stop_session(server, timeout=30, straggler_grace=3, error=PeerInstallError)


def _wait_healthy(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise PeerInstallError(f"prefect server exited {server.returncode}:\n{tail(log)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5,
                         trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise PeerInstallError(f"prefect server not healthy after 300 s:\n{tail(log)}")


def _sweep(args: argparse.Namespace, venv: Path, env: dict[str, str], home: Path) -> int:
    rates = {}
    for count in args.sweep:
        calls = _run_clients(count, args.sweep_seconds, venv, env, home)
        window_end = min(c[0] for c in calls) + args.sweep_seconds if calls else 0
        rates[count] = sum(1 for c in calls if c[1] <= window_end and c[2]) / args.sweep_seconds
    emit("note", text="Prefect client sweep (runs/s, " + f"{args.sweep_seconds:.0f} s each): "
         + ", ".join(f"{n} clients {r:.2f}" for n, r in rates.items()))
    emit("sweep", rates={str(k): v for k, v in rates.items()})
    return max(rates, key=lambda n: rates[n])


def _run_clients(count: int, seconds: float, venv: Path, env: dict[str, str], home: Path,
                 on_go: Callable[[], None] = lambda: None) -> list[tuple[float, float, bool]]:
    """``count`` client processes, warmed up, then calling the flow for ``seconds``
    (``on_go`` is called as the window starts)."""
    procs = []
    for i in range(count):
        err = open(home / f"client-{count}-{i}.log", "ab")  # noqa: SIM115
        procs.append(subprocess.Popen(
            [str(venv / "bin" / "python"), str(HERE / "prefect_client.py")], env=env,
            cwd=home, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True))
    for proc in procs:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != "ready":
            raise PeerInstallError(f"prefect client did not start (said {line!r}); "
                                   f"logs in {home}")
    on_go()
    end = time.time() + seconds
    for proc in procs:
        proc.stdin.write(f"{end}\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
    calls: list[tuple[float, float, bool]] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        calls.extend(tuple(c) for c in json.loads(out.strip().splitlines()[-1]))
    return calls


def _report(calls: list[tuple[float, float, bool]], duration: float, clients: int) -> None:
    start = min(c[0] for c in calls)
    result(runs_in_window=sum(1 for c in calls if c[1] <= start + duration and c[2]),
           duration=duration, started=len(calls), failed=sum(1 for c in calls if not c[2]),
           latencies=[c[1] - c[0] for c in calls if c[2]], config=f"{clients} clients")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--clients", type=int, default=0, help="0: sweep --sweep first")
    parser.add_argument("--sweep", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--sweep-seconds", type=float, default=10.0)
    return parser.parse_args()


if __name__ == "__main__":
    main()
