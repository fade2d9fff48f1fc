"""One Prefect client process (run by the Prefect virtualenv's Python): calls a flow of
three chained tasks in a loop and prints the start and end time of each call as JSON.

It runs one flow to warm up, prints ``ready``, waits for a line on stdin carrying the
window's end (epoch seconds), then calls the flow until that time has passed.
"""

from __future__ import annotations

import json
import sys
import time

from prefect import flow, task


@task
def a() -> int:
    return 1


@task
def b(v: int) -> int:
    return v + 1


@task
def c(v: int) -> int:
    return v + 1


@flow
def bench_noop() -> int:
    return c(b(a()))


def main() -> None:
    bench_noop()
    print("ready", flush=True)
    end = float(sys.stdin.readline())
    calls = []
    while time.time() < end:
        t0 = time.time()
        try:
            ok = bench_noop() == 3
        except Exception as exc:  # a failed run is counted, not fatal
            print(f"flow failed: {exc!r}", file=sys.stderr)
            ok = False
        calls.append((t0, time.time(), ok))
    print(json.dumps(calls), flush=True)


if __name__ == "__main__":
    main()
