"""Driver: Interlock with Celery on Redis and PostgreSQL, through bench/throughput.py.

Runs ``throughput.main()`` unchanged (its schema, its 2 workers, its submitters and its
figures) and reports them in the peers protocol; the only addition is the ``window``
event, sent as throughput's measurement starts (after the workers are ready).

    python bench/peers_support/interlock_celery.py --duration 60 --pg URL --redis URL \\
        [--concurrency 3 --inflight 20 --workers 2]
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import throughput  # noqa: E402

from peers_support.protocol import emit  # noqa: E402

_THROUGHPUT = re.compile(r"throughput: ([\d.]+) flow runs/s \((\d+) finished")
_LATENCY = re.compile(r"p50=(\d+) ms p99=(\d+) ms")
_COUNTS = re.compile(r"runs started=(\d+) finished=(\d+) states=(\{.*\})")


def main() -> None:
    measure = throughput._measure

    def measure_with_window(args: Any, *rest: Any) -> None:
        emit("window")
        measure(args, *rest)

    throughput._measure = measure_with_window  # the one hook: announce the window
    sys.argv = ["throughput.py", *sys.argv[1:]]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        throughput.main()
    text = printed.getvalue()
    sys.stderr.write(text)
    rate, in_window = _THROUGHPUT.search(text).groups()  # type: ignore[union-attr]
    p50, p99 = _LATENCY.search(text).groups()  # type: ignore[union-attr]
    started, finished, states = _COUNTS.search(text).groups()  # type: ignore[union-attr]
    duration = float(sys.argv[sys.argv.index("--duration") + 1])
    emit("result", runs_in_window=int(in_window), duration=duration, runs_per_s=float(rate),
         started=int(started), finished=int(finished),
         failed=int(finished) - _succeeded(states),
         p50=int(p50) / 1000, p99=int(p99) / 1000, printed=text.strip())


def _succeeded(states: str) -> int:
    found = re.search(r"'succeeded'>?: (\d+)", states)
    return int(found.group(1)) if found else 0


if __name__ == "__main__":
    main()
