"""Lineage queries at depth 20 on a graph of 1,000,000 edges, on SQLite and PostgreSQL.

Builds a synthetic estate of many systems (Airflow, Dagster, Interlock, Spark, cron, robots):
~1,300 pipelines ("domains") of 24 layers x 10 jobs; each job writes one dataset and reads
two of the layer before (fan-in 2, fan-out ~2), sometimes one more from further back; a few
first-layer jobs read another domain's outputs, which chains domains together. A depth-20
query (20 jobs up, 20 down) so reaches a bounded but non-trivial subgraph: a few hundred
nodes. Rows go in by bulk (executemany on SQLite, COPY on PostgreSQL) after the schema is
made by Interlock's own migrations. Then --queries queries from random nodes run through
`interlock.lineage.queries.lineage`, the function behind `GET /api/v1/lineage`, each in its
own session like an API request, and p50/p95/max are printed per store. The walk alone is
timed too, as the recursive CTE Interlock uses and as the level-by-level alternative (one
statement per level), on the same starts.

    python bench/lineage.py                                # 1M edges, 200 queries, both stores
    python bench/lineage.py --edges 100000 --stores sqlite # quicker
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from interlock.testing import pg_schema  # noqa: E402

WIDTH, LAYERS = 10, 24
SYSTEMS = [  # (first layer, system) bands of a domain; the number varies by domain
    (0, "airflow/prod-{n}"), (4, "dagster/main-{n}"), (10, "interlock"), (14, "spark/emr-{n}"),
    (18, "dbt/core-{n}"), (21, "cron/db{n}"), (23, "rpa/robots-{n}")]
CROSS = 0.05  # share of first-layer jobs that also read another domain's final outputs


@dataclass
class Estate:
    jobs: list[tuple[str, str, str]] = field(default_factory=list)   # namespace, name, system
    datasets: list[tuple[str, str]] = field(default_factory=list)    # namespace, name
    edges: list[tuple[int, str, int]] = field(default_factory=list)  # job id, dir, dataset id


def build_estate(target: int, seed: int) -> Estate:
    rng = random.Random(seed)
    estate = Estate()
    finals: list[list[int]] = []  # each domain's last-layer datasets
    domain = 0
    while len(estate.edges) < target:
        finals.append(_domain(estate, domain, rng, finals))
        domain += 1
    del estate.edges[target:]
    return estate


def _domain(estate: Estate, d: int, rng: random.Random, finals: list[list[int]]) -> list[int]:
    store = f"postgres://warehouse-{d % 20}:5432"
    sources = [_dataset(estate, f"s3://landing-{d % 10}", f"d{d}/src{i}") for i in range(WIDTH)]
    layers: list[list[int]] = [sources]
    for layer in range(LAYERS):
        system = next(s for first, s in reversed(SYSTEMS) if layer >= first).format(n=d % 7)
        outputs = []
        for i in range(WIDTH):
            if system == "interlock":
                job = _job(estate, "interlock", f"bench.d{d}/flow.n{layer}_{i}", system)
            else:
                job = _job(estate, system, f"d{d}.l{layer}.j{i}", system)
            out = _dataset(estate, store, f"d{d}.l{layer}.t{i}")
            estate.edges.append((job, "out", out))
            reads = set(rng.sample(layers[-1], 2)) if layer else {sources[i]}
            if layer >= 3 and rng.random() < 0.2:
                reads.add(rng.choice(layers[-3]))
            if layer == 0 and finals and rng.random() < CROSS:
                reads.add(rng.choice(rng.choice(finals)))
            estate.edges += [(job, "in", ds) for ds in reads]
            outputs.append(out)
        layers.append(outputs)
    return layers[-1]


def _job(estate: Estate, namespace: str, name: str, system: str) -> int:
    estate.jobs.append((namespace, name, system))
    return len(estate.jobs)


def _dataset(estate: Estate, namespace: str, name: str) -> int:
    estate.datasets.append((namespace, name))
    return len(estate.datasets)


# --- loading -----------------------------------------------------------------------------

SQLITE_TIME = "2026-11-25 06:00:00.000000"  # how UTCDateTime stores times on SQLite
PG_TIME = "2026-11-25 06:00:00+00"


def load(engine: Engine, estate: Estate) -> None:
    from interlock.store.db import upgrade
    upgrade(engine)
    edges = sorted(estate.edges)  # primary-key order: appends to the B-tree
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "postgresql":
            _copy(raw, estate, edges)
        else:
            _executemany(raw, estate, edges)
    finally:
        raw.close()


def _executemany(raw: Any, estate: Estate, edges: list[tuple[int, str, int]]) -> None:
    raw.driver_connection.isolation_level = None  # our BEGIN/COMMIT, none implied
    cur = raw.cursor()
    cur.execute("BEGIN")
    cur.execute("DROP INDEX ix_lineage_edges_dataset")  # built once at the end instead
    cur.executemany("INSERT INTO lineage_jobs (id, namespace, name, system, facets, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                    ((i, ns, n, s, SQLITE_TIME, SQLITE_TIME)
                     for i, (ns, n, s) in enumerate(estate.jobs, 1)))
    cur.executemany("INSERT INTO lineage_datasets (id, namespace, name, facets, created_at, "
                    "updated_at) VALUES (?, ?, ?, '{}', ?, ?)",
                    ((i, ns, n, SQLITE_TIME, SQLITE_TIME)
                     for i, (ns, n) in enumerate(estate.datasets, 1)))
    cur.executemany("INSERT INTO lineage_edges (job_id, direction, dataset_id, source, "
                    "first_seen, last_seen) VALUES (?, ?, ?, 'openlineage', ?, ?)",
                    ((j, d, ds, SQLITE_TIME, SQLITE_TIME) for j, d, ds in edges))
    cur.execute("CREATE INDEX ix_lineage_edges_dataset ON lineage_edges "
                "(dataset_id, direction, job_id)")
    cur.execute("COMMIT")
    cur.execute("ANALYZE")
    cur.close()


def _copy(raw: Any, estate: Estate, edges: list[tuple[int, str, int]]) -> None:
    cur = raw.cursor()
    cur.execute("DROP INDEX ix_lineage_edges_dataset")
    with cur.copy("COPY lineage_jobs (id, namespace, name, system, facets, created_at, "
                  "updated_at) FROM STDIN") as copy:
        for i, (ns, n, s) in enumerate(estate.jobs, 1):
            copy.write_row((i, ns, n, s, "{}", PG_TIME, PG_TIME))
    with cur.copy("COPY lineage_datasets (id, namespace, name, facets, created_at, updated_at)"
                  " FROM STDIN") as copy:
        for i, (ns, n) in enumerate(estate.datasets, 1):
            copy.write_row((i, ns, n, "{}", PG_TIME, PG_TIME))
    with cur.copy("COPY lineage_edges (job_id, direction, dataset_id, source, first_seen, "
                  "last_seen) FROM STDIN") as copy:
        for j, d, ds in edges:
            copy.write_row((j, d, ds, "openlineage", PG_TIME, PG_TIME))
    cur.execute("CREATE INDEX ix_lineage_edges_dataset ON lineage_edges "
                "(dataset_id, direction, job_id)")
    for table in ("lineage_jobs", "lineage_datasets"):
        cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
    raw.commit()
    raw.driver_connection.autocommit = True  # VACUUM runs outside a transaction
    for table in ("lineage_jobs", "lineage_datasets", "lineage_edges"):
        cur.execute(f"VACUUM ANALYZE {table}")  # visibility map: index-only scans


# --- measuring ---------------------------------------------------------------------------


def starts(estate: Estate, n: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    total = len(estate.jobs) + len(estate.datasets)
    picked = []
    for k in rng.sample(range(total), n):
        if k < len(estate.jobs):
            ns, name, _ = estate.jobs[k]
            picked.append(f"job:{ns}:{name}")
        else:
            ns, name = estate.datasets[k - len(estate.jobs)]
            picked.append(f"dataset:{ns}:{name}")
    return picked


def measure(url: str, nodes: list[str], depth: int, warmup: int) -> None:
    from pydantic_core import to_json

    from interlock.lineage import queries
    from interlock.lineage.walk import walk
    from interlock.store.db import session_scope
    both = (queries.Stream.UPSTREAM, queries.Stream.DOWNSTREAM)

    def api(node: str) -> int:  # what GET /api/v1/lineage does, less HTTP
        with session_scope(url) as session:
            graph = queries.lineage(session, node, depth=depth)
        to_json(graph)
        return len(graph["graph"])

    def recursive(node: str) -> int:
        with session_scope(url) as session:
            return len(walk(session, queries.resolve(session, node), depth=depth,
                            streams=both).nodes)

    def levels(node: str) -> int:
        with session_scope(url) as session:
            return len(level_walk(session, queries.resolve(session, node), depth))

    for node in nodes[:warmup]:
        api(node)
    labels = {"lineage() + JSON (the API)": api, "walk: recursive CTE (kept)": recursive,
              "walk: a statement per level": levels}
    times: dict[str, list[float]] = {label: [] for label in labels}
    sizes: dict[str, list[int]] = {label: [] for label in labels}
    for node in nodes:  # interleaved: a change of load hits the three alike
        for label, query in labels.items():
            t0 = time.perf_counter()
            sizes[label].append(query(node))
            times[label].append(time.perf_counter() - t0)
    for label, values in times.items():
        values.sort()
        print(f"  {label:30s} n={len(values)} p50 {1000 * _pct(values, 50):6.1f} ms  "
              f"p95 {1000 * _pct(values, 95):6.1f} ms  max {1000 * values[-1]:6.1f} ms")
    walked = list(sizes.values())
    if walked[1] != walked[2]:
        bad = sum(a != b for a, b in zip(walked[1], walked[2], strict=True))
        print(f"  !! the two walks reached different numbers of nodes on {bad} starts")
    print(f"  nodes per graph: median {statistics.median(walked[0]):.0f}, "
          f"p95 {_pct(sorted(walked[0]), 95):.0f}, max {max(walked[0])}")


def level_walk(session: Any, start: Any, depth: int) -> list[Any]:
    """The alternative measured against the recursive CTE: breadth-first, one statement per
    level for both directions (`WHERE job_id IN (...)` / `WHERE dataset_id IN (...)`), then
    the same naming of the nearest nodes as the kept walk, so both do the same work."""
    from sqlalchemy import literal, select, union_all

    from interlock.lineage.walk import MAX_NODES, _named
    from interlock.store.tables.lineage import EDGES
    streams = {"down": ("out", "in"), "up": ("in", "out")}  # job side, dataset side
    kind = "j" if start.kind.value == "job" else "d"
    seen = {s: {(kind, start.id)} for s in streams}
    frontier = {s: {start.id} for s in streams}
    nearest = {(kind, start.id): 0}
    hop = 0
    for _ in range(2 * depth + (1 if kind == "j" else 0)):
        parts = []
        for s, ids in frontier.items():
            if not ids:
                continue
            key, other = ((EDGES.c.job_id, EDGES.c.dataset_id) if kind == "j"
                          else (EDGES.c.dataset_id, EDGES.c.job_id))
            direction = streams[s][0 if kind == "j" else 1]
            parts.append(select(literal(s).label("s"), other.label("n"))
                         .where(key.in_(sorted(ids)), EDGES.c.direction == direction))
        if not parts:
            break
        rows = session.execute(union_all(*parts) if len(parts) > 1 else parts[0]).all()
        kind = "d" if kind == "j" else "j"
        frontier = {s: set() for s in streams}
        hop += 1
        for s, n in rows:
            if (kind, n) not in seen[s]:
                seen[s].add((kind, n))
                frontier[s].add(n)
                nearest.setdefault((kind, n), hop)
    ranked = sorted(nearest.items(), key=lambda item: (item[1], item[0]))[:MAX_NODES]
    return _named(session, ranked, postgres=session.get_bind().dialect.name == "postgresql")


def _pct(values: list[Any], p: float) -> Any:
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# --- stores ------------------------------------------------------------------------------


def sqlite_store(directory: Path) -> Iterator[str]:
    yield f"sqlite:///{directory / 'lineage-bench.db'}"


def main() -> None:
    args = _args()
    home = Path(tempfile.mkdtemp(prefix="interlock-lineage-bench-"))
    os.environ.setdefault("INTERLOCK_HOME", str(home))
    t0 = time.perf_counter()
    estate = build_estate(args.edges, args.seed)
    print(f"estate: {len(estate.edges):,} edges, {len(estate.jobs):,} jobs, "
          f"{len(estate.datasets):,} datasets, {len({s for _, _, s in estate.jobs})} systems "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    nodes = starts(estate, args.queries, args.seed)
    for kind in args.stores.split(","):
        stores = sqlite_store(home) if kind == "sqlite" else pg_schema(args.pg, "bench_lineage")
        for url in stores:
            from interlock.store.db import engine_for
            t0 = time.perf_counter()
            loader = create_engine(url)
            load(loader, estate)
            loader.dispose()
            built = time.perf_counter() - t0
            engine_for(url)
            print(f"{kind}: built in {built:.1f} s; {args.queries} queries at depth "
                  f"{args.depth} from random nodes ({args.warmup} warm-up first)")
            measure(url, nodes, args.depth, args.warmup)
    if "sqlite" in args.stores:
        for path in home.glob("lineage-bench.db*"):
            path.unlink()
    if args.audit_records:  # the issue asks this bench for the audit chain's verify time too
        from audit import measure_stores
        measure_stores(args.audit_records, args.stores.split(","), args.pg, home)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--audit-records", type=int, default=1_000_000,
                        help="then time verifying an audit chain this long (0: skip)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return parser.parse_args()


if __name__ == "__main__":
    main()
