"""How throughput moves with workers, threads per worker and runs in flight (issue 20).

Runs `bench/throughput.py` (3-node `noop` flows, Redis + PostgreSQL, real workers) once per
point of a small grid, one after another, and prints one line per point: runs/s and p50/p99
start->finish. Each point is a fresh process, schema and worker pool.

    python bench/scaling.py                       # 15 s a point, the default grid
    python bench/scaling.py --duration 30 --workers 1 2 --concurrency 4 8 --inflight 20 200
    python bench/scaling.py --long-way            # each node through a worker (EXECUTE)

A start settles a `noop` flow in its own transaction (`docs/dispatch.md`): without
`--long-way` the workers are idle and only the runs in flight matter.
"""

from __future__ import annotations

import argparse
import itertools
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "throughput.py"
FIGURES = re.compile(r"throughput: (?P<rate>[\d.]+) flow runs/s.*?p50=(?P<p50>\d+) ms "
                     r"p99=(?P<p99>\d+) ms", re.S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--inflight", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--long-way", action="store_true",
                        help="noop nodes go through the workers (bench/throughput.py)")
    args = parser.parse_args()
    print(f"{'workers':>7} {'threads':>7} {'inflight':>8} {'runs/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7}")
    for workers, threads, inflight in itertools.product(args.workers, args.concurrency,
                                                        args.inflight):
        out = subprocess.run(
            [sys.executable, str(BENCH), "--duration", str(args.duration), "--workers",
             str(workers), "--concurrency", str(threads), "--inflight", str(inflight),
             *(["--long-way"] if args.long_way else [])],
            capture_output=True, text=True, check=False).stdout
        found = FIGURES.search(out)
        if found is None:
            print(f"{workers:>7} {threads:>7} {inflight:>8}   no figures:\n{out[-800:]}")
            continue
        print(f"{workers:>7} {threads:>7} {inflight:>8} {float(found['rate']):>7.1f} "
              f"{found['p50']:>7} {found['p99']:>7}", flush=True)


if __name__ == "__main__":
    main()
