"""The traversal behind every lineage query: one recursive SQL statement, both directions.

It follows the data: downstream from a job to what it writes and on to who reads that,
upstream the other way. It never turns around (the other readers of a job's input are not
its lineage), which is what keeps a depth-20 query bounded where an undirected walk of a
large graph is not. `depth` counts jobs, as Marquez does: depth N reaches N jobs away in
each direction and the datasets they read or write on the way.

One recursive CTE per direction walks (kind, id, hops) rows through `lineage_edges` (its
primary key for job -> datasets, `ix_lineage_edges_dataset` for dataset -> jobs), both in
one statement; a second fetches the names of the nodes kept. Measured against a statement
per level (bench/lineage.py): one round trip instead of 2 x depth.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Integer, String, bindparam, column, text
from sqlalchemy.orm import Session

from interlock.lineage.nodes import NodeKind, NodeRef, Stream, node_id
from interlock.store.types import UTCDateTime

MAX_NODES = 5000
_ROWS_PER_NODE = 4  # a node reached by paths of several lengths is a row per length


@dataclass(frozen=True)
class Reached:
    kind: NodeKind
    id: int
    distance: int          # edges from the start node
    namespace: str
    name: str
    system: str | None     # jobs only
    created_at: datetime
    updated_at: datetime

    @property
    def node_id(self) -> str:
        return node_id(self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class Walk:
    nodes: list[Reached]   # nearest first
    truncated: bool        # the node cap stopped it before `depth`

    def ids(self, kind: NodeKind) -> list[int]:
        return [n.id for n in self.nodes if n.kind is kind]


def walk(session: Session, start: NodeRef, *, depth: int, streams: Collection[Stream],
         seeds: Iterable[int] = (), max_nodes: int = MAX_NODES) -> Walk:
    """Everything within ``depth`` jobs of ``start`` (and ``seeds``, jobs at distance 0)
    along ``streams``, at most ``max_nodes`` of it, nearest first."""
    postgres = session.get_bind().dialect.name == "postgresql"
    rows_cap = max_nodes * _ROWS_PER_NODE
    params: dict[str, Any] = {"hops": 2 * depth + (1 if start.kind is NodeKind.JOB else 0),
                              "rows": rows_cap}
    if start.kind is NodeKind.JOB:
        params["seeds"] = sorted({start.id, *seeds})
    else:
        params["start"] = start.id
    nearest: dict[tuple[str, int], int] = {}
    counts = dict.fromkeys((s.value for s in streams), 0)
    for stream, kind, node, hops in session.execute(
            _sql(start.kind, tuple(sorted(streams)), postgres=postgres), params):
        counts[stream] += 1
        if hops < nearest.get((kind, node), hops + 1):
            nearest[(kind, node)] = hops
    ranked = sorted(nearest.items(), key=lambda item: (item[1], item[0]))
    truncated = len(ranked) > max_nodes or max(counts.values()) >= rows_cap
    return Walk(nodes=_named(session, ranked[:max_nodes], postgres=postgres),
                truncated=truncated)


@cache
def _sql(kind: NodeKind, streams: tuple[Stream, ...], *, postgres: bool) -> Any:
    """(stream, kind, id, hops) rows, `j` for jobs and `d` for datasets.

    UNION drops repeated rows; rows come out level by level, so a LIMIT keeps the nearest.
    SQLite stops a recursion at a LIMIT inside its CTE; PostgreSQL allows none there but
    evaluates a CTE only as far as a LIMIT above it reads."""
    if kind is NodeKind.JOB:
        anchor = "SELECT CAST('j' AS TEXT), id, 0 FROM lineage_jobs WHERE id IN :seeds"
    else:
        anchor = "SELECT CAST('d' AS TEXT), id, 0 FROM lineage_datasets WHERE id = :start"
    inner_limit = "" if postgres else " LIMIT :rows"
    ctes, selects = [], []
    for stream in streams:
        near, far = ("out", "in") if stream is Stream.DOWNSTREAM else ("in", "out")
        ctes.append(f"""{stream.value}(kind, id, hops) AS (
            {anchor}
            UNION
            SELECT CASE WHEN w.kind = 'j' THEN 'd' ELSE 'j' END,
                   CASE WHEN w.kind = 'j' THEN e.dataset_id ELSE e.job_id END, w.hops + 1
            FROM {stream.value} w JOIN lineage_edges e
              ON (w.kind = 'j' AND e.job_id = w.id AND e.direction = '{near}')
              OR (w.kind = 'd' AND e.dataset_id = w.id AND e.direction = '{far}')
            WHERE w.hops < :hops{inner_limit})""")
        selects.append(f"SELECT '{stream.value}', kind, id, hops FROM (SELECT kind, id, hops "
                       f"FROM {stream.value} LIMIT :rows) AS {stream.value}_rows")
    sql = text(f"WITH RECURSIVE {', '.join(ctes)} {' UNION ALL '.join(selects)}")
    return sql.bindparams(bindparam("seeds", expanding=True)) if kind is NodeKind.JOB else sql


def _named(session: Session, ranked: list[tuple[tuple[str, int], int]], *,
           postgres: bool) -> list[Reached]:
    """The nodes with their names, in one statement; ``ranked`` keeps its order."""
    if not ranked:
        return []
    jobs = [node for (kind, node), _ in ranked if kind == "j"]
    datasets = [node for (kind, node), _ in ranked if kind == "d"]
    rows = session.execute(_NAMED_PG if postgres else _NAMED_SQLITE,
                           {"jobs": _ids(jobs, postgres), "datasets": _ids(datasets, postgres)})
    named = {(r.kind, r.id): r for r in rows}
    return [Reached(NodeKind.JOB if kind == "j" else NodeKind.DATASET, node, hops,
                    r.namespace, r.name, r.system, r.created_at, r.updated_at)
            for (kind, node), hops in ranked if (r := named.get((kind, node))) is not None]


def _ids(ids: list[int], postgres: bool) -> Any:
    """A list of ids as one parameter: an array on PostgreSQL, JSON on SQLite (`json_each`);
    thousands of ids cost nothing to bind this way, unlike an IN list of as many."""
    return ids if postgres else json.dumps(ids)


def _named_sql(ids: str) -> Any:
    sql = text(f"""
        SELECT 'j' AS kind, id, namespace, name, system, created_at, updated_at
        FROM lineage_jobs WHERE id {ids.format(param="jobs")}
        UNION ALL
        SELECT 'd', id, namespace, name, NULL, created_at, updated_at
        FROM lineage_datasets WHERE id {ids.format(param="datasets")}""")
    return sql.columns(column("kind", String), column("id", Integer),
                       column("namespace", String), column("name", String),
                       column("system", String), column("created_at", UTCDateTime()),
                       column("updated_at", UTCDateTime()))


_IDS_PG = "= ANY(CAST(:{param} AS INTEGER[]))"
_IDS_SQLITE = "IN (SELECT value FROM json_each(:{param}))"
_NAMED_PG = _named_sql(_IDS_PG)
_NAMED_SQLITE = _named_sql(_IDS_SQLITE)


def edges_among(session: Session, found: Walk) -> set[tuple[int, str, int]]:
    """Every (job, direction, dataset) edge between two nodes of a walk, whatever source
    reported it."""
    jobs = found.ids(NodeKind.JOB)
    if not jobs:
        return set()
    datasets = set(found.ids(NodeKind.DATASET))
    postgres = session.get_bind().dialect.name == "postgresql"
    where = _IDS_PG if postgres else _IDS_SQLITE
    rows = session.execute(text("SELECT job_id, direction, dataset_id FROM lineage_edges "
                                f"WHERE job_id {where.format(param='jobs')}"),
                           {"jobs": _ids(jobs, postgres)})
    return {(j, d, ds) for j, d, ds in rows if ds in datasets}
