"""How long verifying the audit chain takes: 1M records on SQLite and on PostgreSQL.

Builds a chain of N records with the same digest function the store uses (bulk inserted,
so the build is not the measurement), then times `interlock.store.audit.verify` on it
through the same code path as `interlock audit verify` and `GET /api/v1/audit/verify`.
Then edits one record in the middle and times finding it.

    python bench/audit.py                    # 1,000,000 records, both stores
    python bench/audit.py --records 100000 --stores sqlite
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock.config.env import settings  # noqa: E402
from interlock.store import audit  # noqa: E402
from interlock.store.db import dispose_all, engine_for, session_scope  # noqa: E402
from interlock.store.tables import AuditHead, AuditRecord  # noqa: E402
from interlock.testing import pg_schema  # noqa: E402

CHUNK = 20_000
ACTIONS = [a for a in audit.Action]


def build(n: int) -> None:
    """Insert a valid chain of ``n`` records and point the head at its end."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    prev = audit.GENESIS
    with session_scope() as session:
        rows = []
        for seq in range(1, n + 1):
            at = start + timedelta(milliseconds=seq)
            action = ACTIONS[seq % len(ACTIONS)].value
            actor, target, origin = f"user{seq % 50}", f"runs/{seq % 9973:06d}", "10.0.0.7"
            before, after = {"state": "running"}, {"state": "succeeded", "n": seq}
            digest = audit._digest(prev, seq, at, actor, action, target, before, after, origin)
            rows.append({"seq": seq, "at": at, "actor": actor, "action": action,
                         "target": target, "before": before, "after": after,
                         "origin": origin, "prev_hash": prev, "hash": digest})
            prev = digest
            if len(rows) == CHUNK:
                session.execute(insert(AuditRecord), rows)
                rows = []
        if rows:
            session.execute(insert(AuditRecord), rows)
        session.execute(update(AuditHead).where(AuditHead.id == audit.HEAD_ID)
                        .values(seq=n, hash=prev))


def measure(store: str, url: str, n: int) -> None:
    os.environ["INTERLOCK_DATABASE_URL"] = url
    settings.cache_clear()
    engine_for()  # migrate
    began = time.perf_counter()
    build(n)
    built = time.perf_counter() - began
    with session_scope() as session:
        began = time.perf_counter()
        verdict = audit.verify(session)
        took = time.perf_counter() - began
    assert verdict.ok and verdict.checked == n, verdict
    middle = n // 2
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == middle)
                        .values(actor="mallory"))
    with session_scope() as session:
        began = time.perf_counter()
        broken = audit.verify(session)
        found = time.perf_counter() - began
    assert (broken.ok, broken.broken_at) == (False, middle), broken
    print(f"{store:10} {n:>9,} records  build {built:6.1f}s  verify {took:6.2f}s "
          f"({n / took:,.0f} records/s)  edit at {middle:,} found in {found:5.2f}s")
    dispose_all()


def measure_stores(records: int, stores: list[str], pg_url: str, home: Path) -> None:
    os.environ.setdefault("INTERLOCK_HOME", str(home))
    if "sqlite" in stores:
        measure("sqlite", f"sqlite:///{home / 'audit-bench.db'}", records)
    if "postgresql" in stores:
        for url in pg_schema(pg_url, "bench_audit"):
            measure("postgresql", url, records)


def main() -> None:
    args = _args()
    measure_stores(args.records, args.stores, args.pg,
                   Path(tempfile.mkdtemp(prefix="interlock-bench-audit-")))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return parser.parse_args()


if __name__ == "__main__":
    main()
