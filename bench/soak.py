"""Chaos soak: nothing lost, nothing done twice, while processes and servers fail.

Starts a private Redis and a private PostgreSQL cluster (`initdb` on a free loopback port),
2 workers, 2 schedulers and 2 APIs; runs a mix of flows (script nodes writing a ledger, noop
chains, fan-out/fan-in, a `schedule:` every minute, webhooks with and without an
Idempotency-Key, `after:` chains, cron reports through `interlock cron exec`) while a seeded
fault plan kills and pauses processes and restarts the servers; then, once quiet, checks the
invariants and prints the report. Exits 1 when one fails.

    python bench/soak.py --minutes 10 --seed 18
    python bench/soak.py --minutes 2 --seed 7 --no-fill-disk  # leave the attempts disk alone
    python bench/soak.py --plan-only --seed 7                  # print the plan and stop

The same plan comes back for the same --seed and --minutes. Filling the attempts disk needs
a tmpfs mounted over it, so root: run as another user, the soak leaves that kind out and
says so. `tests/test_soak.py` runs the 2-minute version.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.soak_faults import Kind, plan  # noqa: E402
from tests.soak_run import DEFAULT_KINDS, SoakConfig, run_soak  # noqa: E402
from tests.soak_services import services_missing  # noqa: E402


def main() -> int:
    args = _args()
    kinds = tuple(k for k in DEFAULT_KINDS if k is not Kind.FILL_DISK or not args.no_fill_disk)
    if args.plan_only:
        for fault in plan(args.seed, args.minutes * 60, list(kinds), args.lease):
            print(fault.describe())
        return 0
    if (missing := services_missing()) is not None:
        print(f"cannot run the soak here: {missing}", file=sys.stderr)
        return 2
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="interlock-soak-"))
    config = SoakConfig(minutes=args.minutes, seed=args.seed, home=home, kinds=kinds,
                        lease_s=args.lease)
    # SIGTERM unwinds like Ctrl-C: every process and server the soak started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = run_soak(config)
    print("\n" + report.text())
    if report.ok and not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"logs and ledger kept in {home}")
    return 0 if report.ok else 1


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--lease", type=float, default=5.0, help="INTERLOCK_LEASE_SECONDS")
    parser.add_argument("--no-fill-disk", action="store_true",
                        help="leave out the full attempts disk (a tmpfs; needs root)")
    parser.add_argument("--home", help="where logs and the ledger go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the home even when ok")
    parser.add_argument("--plan-only", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
