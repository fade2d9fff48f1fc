"""The cost of policies at node submit: 20 rules evaluated (and audited) before each submit.

Runs one-node `noop` flows on the embedded dispatcher and times, per run, all the work its
handlers do (the planning pass that checks the policies and queues the attempt, the submit
to the adapter, recording the outcome and finishing the run), without policies and with 20
enforced rules that all hold, side by side in one process; also the evaluation alone (CEL,
no store) per submit.

    python bench/policies.py                         # SQLite, 200 submits per mode
    python bench/policies.py --runs 500 --pg postgresql+psycopg://127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FLOW = """
id: one
namespace: bench.policies
labels: {owner: bench, data_class: internal}
nodes:
  step: {uses: noop, timeout: 1m, with: {v: 1}}
"""
RULE = """  - name: rule-{i}
    when: "node.adapter != 'agent'"
    check: "node.retry.attempts <= {n} && (node.timeout == null || node.timeout <= 3600.0)
            && flow.labels.size() >= 1 && !(node.system in ['forbidden/{i}'])"
    message: rule {i}
    points: [submit]
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL (a schema is made)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="interlock-policies-"))
    folder = home / "policies"
    folder.mkdir()
    os.environ.update({"INTERLOCK_HOME": str(home), "INTERLOCK_POLICIES": str(folder),
                       "INTERLOCK_SYSTEMS": str(home / "none.yaml")})
    os.environ.pop("INTERLOCK_BROKER_URL", None)
    schemas = None
    if args.pg:
        from interlock.testing import pg_schema
        schemas = pg_schema(args.pg, prefix="bench_policies")
        os.environ["INTERLOCK_DATABASE_URL"] = next(schemas)
    else:
        os.environ["INTERLOCK_DATABASE_URL"] = f"sqlite:///{home / 'interlock.db'}"
    try:
        _measure(args.runs, args.rules, folder)
    finally:
        if schemas is not None:
            schemas.close()  # drops the schema


def _measure(runs: int, rules: int, folder: Path) -> None:
    from helpers import wait_run

    from interlock.dispatch import executor, handlers
    from interlock.dispatch.embedded import EmbeddedDispatcher
    from interlock.operations import runs as ops
    from interlock.policies import points
    from interlock.policies.model import Point

    durations: list[float] = []
    spent = [0.0]  # handler time of the run in progress (runs go one at a time)

    def timed(real: Any) -> Any:
        def run(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return run

    handlers.advance = timed(handlers.advance)  # type: ignore[assignment]
    executor.execute = timed(executor.execute)  # type: ignore[assignment]
    flow, _ = ops.register(FLOW)
    dispatcher = EmbeddedDispatcher()
    results: dict[str, list[float]] = {}
    try:
        for mode in ("no policies", f"{rules} rules"):
            if mode != "no policies":
                (folder / "bench.yaml").write_text(
                    "policy: bench\nscope: '*'\nrules:\n"
                    + "".join(RULE.format(i=i, n=5 + i) for i in range(rules)))
            durations.clear()
            for _ in range(runs):
                spent[0] = 0.0
                run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                                       dispatcher=dispatcher)
                wait_run(run_id)
                durations.append(spent[0])
            results[mode] = list(durations)
        start = time.perf_counter()
        for _ in range(runs):
            decided = points.evaluate(flow, Point.SUBMIT, actor="bench", nodes=["step"],
                                      run={"inputs": {}, "trigger": {}})
        alone = (time.perf_counter() - start) / runs
        assert len(decided) == rules and all(d.allowed for d in decided)
    finally:
        dispatcher.close()
    print(f"{os.cpu_count()} cores, {runs} submits per mode, store "
          f"{os.environ['INTERLOCK_DATABASE_URL'].split(':')[0]}")
    base = statistics.median(results["no policies"])
    for mode, values in results.items():
        p50 = statistics.median(values)
        print(f"  one-node run's handlers ({mode}): p50 {p50 * 1e3:.2f} ms, "
              f"p90 {statistics.quantiles(values, n=10)[-1] * 1e3:.2f} ms, "
              f"x{p50 / base:.2f} of no policies")
    print(f"  evaluation alone ({rules} rules, CEL, no store): {alone * 1e6:.0f} us per submit "
          f"= {alone / base:.1%} of a run's handler time without policies")


if __name__ == "__main__":
    main()
