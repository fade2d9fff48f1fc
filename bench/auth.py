"""The cost of authentication per request: `GET /api/v1/runs/{id}` on a real `interlock
serve`, with authentication off and with an API token (and, with --oidc-issuer, a JWT),
side by side in one run, on the same store and the same run.

    python bench/auth.py                    # 20 s per mode, 4 client threads, SQLite
    python bench/auth.py --duration 20 --database postgresql+psycopg://postgres@127.0.0.1/test

Prints requests/s and p50/p99 latency for each mode and the ratio token/off.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

FLOW = """
id: bench-auth
namespace: bench.auth
nodes:
  a: {uses: noop, with: {v: 1}}
  b: {uses: noop, needs: [a]}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interlock", "serve", "--port", str(port)],
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"the API did not start: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _hammer(url: str, headers: dict[str, str], seconds: float, threads: int
            ) -> tuple[float, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop() -> None:
        mine: list[float] = []
        with httpx.Client(headers=headers, timeout=10) as client:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                if client.get(url).status_code != 200:
                    raise SystemExit(f"GET {url} did not answer 200")
                mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return len(latencies) / seconds, statistics.median(latencies) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=10, help="alternating bursts per mode")
    parser.add_argument("--database", default=None, help="default: a SQLite file")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    env = {**os.environ, "INTERLOCK_HOME": str(home),
           "INTERLOCK_DATABASE_URL": args.database or f"sqlite:///{home / 'interlock.db'}"}
    env.pop("INTERLOCK_BROKER_URL", None)
    os.environ.update({k: env[k] for k in ("INTERLOCK_HOME", "INTERLOCK_DATABASE_URL")})

    from interlock.access import tokens
    from interlock.access.permissions import Role
    from interlock.operations import runs as ops
    from interlock.store.db import session_scope
    with session_scope() as session:
        token, _ = tokens.create(session, name="bench", role=Role.VIEWER, namespace="bench.*",
                                 created_by="bench")
    (home / "flow.yaml").write_text(FLOW)
    subprocess.run([sys.executable, "-m", "interlock", "run", str(home / "flow.yaml"), "--json"],
                   env=env, check=True, capture_output=True)
    run_id = ops.list_runs(filters=ops.run_store.RunFilter(), limit=1).runs[0].id

    modes = (("auth off", {"INTERLOCK_AUTH": "off"}, {}),
             ("API token", {}, {"Authorization": f"Bearer {token}"}))
    servers = {name: _serve({**env, **extra}, home / f"serve-{name.replace(' ', '-')}.log")
               for name, extra, _ in modes}
    # Both servers run side by side; short alternating bursts cancel the machine's drift.
    rounds, burst = args.rounds, args.duration / args.rounds
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in modes}
    try:
        for name, _, headers in modes:  # warm up
            _hammer(f"{servers[name][1]}/api/v1/runs/{run_id}", headers, 1.0, args.threads)
        for _ in range(rounds):
            for name, _, headers in modes:
                samples[name].append(_hammer(f"{servers[name][1]}/api/v1/runs/{run_id}",
                                             headers, burst, args.threads))
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    results = {name: tuple(statistics.median(s[i] for s in runs) for i in range(3))
               for name, runs in samples.items()}
    print(f"GET /api/v1/runs/{{id}}, {args.threads} client threads, {args.duration:.0f} s per "
          f"mode in {rounds} alternating bursts (medians), "
          f"store {env['INTERLOCK_DATABASE_URL'].split(':')[0]}")
    for mode, (rps, p50, p99) in results.items():
        print(f"  {mode:10s} {rps:8.1f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
    ratio = results["API token"][0] / results["auth off"][0]
    print(f"  token/off throughput ratio: {ratio:.3f} (authentication costs "
          f"{(1 - ratio) * 100:.1f} %)")


if __name__ == "__main__":
    main()
