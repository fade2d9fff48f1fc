"""Lineage queries: the graph around a node (Marquez's shape), impact, a dataset's history.

All three are bounded: depth at most 20 jobs, at most 5000 nodes (`interlock.lineage.walk`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import String, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from interlock.errors import NotFound
from interlock.lineage.naming import INTERLOCK
from interlock.lineage.nodes import NodeKind, NodeRef, Stream, candidates, node_id
from interlock.lineage.views import DatasetHistory, HistoryEntry, NameRef
from interlock.lineage.walk import MAX_NODES, Reached, edges_among, walk
from interlock.store import cursor as cursors
from interlock.store.tables.lineage import (
    DATASETS,
    IO,
    JOB_PARENTS,
    JOBS,
    Direction,
)

MAX_DEPTH = 20
LISTING = "lineage/datasets/{dataset}/history"
FAMILY_LEVELS = 5  # how far parent/child relations of a job are followed for impact


def resolve(session: Session, text: str) -> NodeRef:
    """The node a Marquez-style id names: ValueError if malformed, NotFound if unknown."""
    kind, splits = candidates(text)
    table = JOBS if kind is NodeKind.JOB else DATASETS
    rows = session.execute(select(table.c.id, table.c.namespace, table.c.name).where(
        or_(*[and_(table.c.namespace == ns, table.c.name == name) for ns, name in splits]))
    ).all()
    if not rows:
        raise NotFound(f"no {kind.value} `{text[:300]}` in the lineage store")
    row = max(rows, key=lambda r: len(r.namespace))  # `a:b:c`: prefer namespace `a:b`
    return NodeRef(kind, row.id, row.namespace, row.name)


def lineage(session: Session, text: str, *, depth: int = MAX_DEPTH,
            max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The graph around a node, upstream and downstream to ``depth`` jobs, in Marquez's
    shape (`views.LineageGraph`), as plain data: a graph of thousands of nodes costs a few
    milliseconds as dicts and ten times that as pydantic models, so the route sends these
    straight to JSON. tests/test_lineage.py checks they validate as the model."""
    start = resolve(session, text)
    found = walk(session, start, depth=min(depth, MAX_DEPTH), max_nodes=max_nodes,
                 streams=(Stream.UPSTREAM, Stream.DOWNSTREAM))
    nodes = {(n.kind, n.id): _graph_node(n) for n in found.nodes}
    for job_id, direction, dataset_id in sorted(edges_among(session, found)):
        job, data = nodes[(NodeKind.JOB, job_id)], nodes[(NodeKind.DATASET, dataset_id)]
        if direction == Direction.IN.value:
            edge = {"origin": data["id"], "destination": job["id"]}
            job["inEdges"].append(edge)
            data["outEdges"].append(edge)
        else:
            edge = {"origin": job["id"], "destination": data["id"]}
            job["outEdges"].append(edge)
            data["inEdges"].append(edge)
    first = nodes.pop((start.kind, start.id))
    return {"graph": [first, *nodes.values()], "truncated": found.truncated}


def _graph_node(node: Reached) -> dict[str, Any]:
    return {"id": node.node_id, "type": "JOB" if node.kind is NodeKind.JOB else "DATASET",
            "data": {"id": {"namespace": node.namespace, "name": node.name},
                     "namespace": node.namespace, "name": node.name, "system": node.system,
                     "createdAt": node.created_at, "updatedAt": node.updated_at},
            "inEdges": [], "outEdges": []}


def family(session: Session, job_id: int, *, levels: int = FAMILY_LEVELS,
           cap: int = 500) -> set[int]:
    """The job's ancestors and descendants by OpenLineage parent facets: a DAG and its
    tasks, the Interlock node that triggered the DAG, that node's flow."""
    found: set[int] = set()
    for mine, theirs in ((JOB_PARENTS.c.child_id, JOB_PARENTS.c.parent_id),
                         (JOB_PARENTS.c.parent_id, JOB_PARENTS.c.child_id)):
        frontier = {job_id}
        for _ in range(levels):
            if not frontier or len(found) >= cap:
                break
            rows = session.execute(select(theirs).where(mine.in_(sorted(frontier)))).scalars()
            frontier = set(rows) - found - {job_id}
            found |= frontier
    return found


def impact(session: Session, text: str, *, stream: Stream, depth: int = MAX_DEPTH,
           max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """What a node's failure touches (downstream), or what it depends on (upstream), as
    `views.Impact` in plain data (see `lineage`).

    A job brings its family along at distance 0: if an Airflow DAG fails, so does the
    Interlock node that triggered it, and what its tasks write is not written."""
    start = resolve(session, text)
    seeds = family(session, start.id) if start.kind is NodeKind.JOB else set()
    depth = min(depth, MAX_DEPTH)
    found = walk(session, start, depth=depth, streams=(stream,), seeds=seeds,
                 max_nodes=max_nodes)
    affected = sorted((n for n in found.nodes if (n.kind, n.id) != (start.kind, start.id)),
                      key=lambda n: (n.distance, n.namespace, n.name))
    jobs: dict[str, list[dict[str, Any]]] = {}
    for n in affected:
        if n.kind is NodeKind.JOB:
            jobs.setdefault(n.system or n.namespace, []).append(_affected(n))
    flows = sorted({flow_of(a["name"]) for a in jobs.get(INTERLOCK, [])})
    return {"nodeId": start.node_id, "direction": stream.value, "depth": depth,
            "jobs": dict(sorted(jobs.items())), "flows": flows, "systems": sorted(jobs),
            "datasets": [_affected(n) for n in affected if n.kind is NodeKind.DATASET],
            "truncated": found.truncated}


def _affected(node: Reached) -> dict[str, Any]:
    return {"id": node.node_id, "namespace": node.namespace, "name": node.name,
            "system": node.system, "distance": node.distance}


def flow_of(job_name: str) -> str:
    """`ns/flow` of an Interlock job: the flow's own (`ns/flow`) or a node's (`ns/flow.node`)."""
    namespace, _, rest = job_name.rpartition("/")
    return f"{namespace}/{rest.split('.', 1)[0]}"


def history(session: Session, *, namespace: str, name: str, limit: int = 50,
            cursor: str | None = None, access: str | None = None) -> DatasetHistory:
    """Who read or wrote the dataset, when, in which run: newest first, by pages."""
    dataset = session.execute(select(DATASETS.c.id).where(
        DATASETS.c.namespace == namespace, DATASETS.c.name == name)).scalar()
    ref = node_id(NodeKind.DATASET, namespace, name)
    if dataset is None:
        raise NotFound(f"no dataset `{ref[:300]}` in the lineage store")
    query = (select(IO.c.id, IO.c.run_id, IO.c.direction, IO.c.state, IO.c.at, IO.c.source,
                    JOBS.c.namespace, JOBS.c.name, JOBS.c.system)
             .join(JOBS, JOBS.c.id == IO.c.job_id).where(IO.c.dataset_id == dataset))
    if access is not None:
        query = query.where(IO.c.direction == _ACCESS[access].value)
    if cursor is not None:
        at, last = cursors.decode(LISTING, cursor, datetime, int)
        query = query.where(or_(IO.c.at < at, and_(IO.c.at == at, IO.c.id < last)))
    rows = session.execute(query.order_by(IO.c.at.desc(), IO.c.id.desc()).limit(limit + 1)).all()
    items = [HistoryEntry(
        job_id=node_id(NodeKind.JOB, r.namespace, r.name),
        job=NameRef(namespace=r.namespace, name=r.name), system=r.system,
        access="read" if r.direction == Direction.IN.value else "write", run_id=r.run_id,
        state=r.state, at=r.at, source=r.source) for r in rows[:limit]]
    more = cursors.encode(LISTING, rows[limit - 1].at, rows[limit - 1].id) \
        if len(rows) > limit else None
    return DatasetHistory(dataset=ref, items=items, next_cursor=more)


_ACCESS = {"read": Direction.IN, "write": Direction.OUT}


# --- finding a start node --------------------------------------------------------------

SEARCH_MAX = 100  # matches per answer, at most
SEARCH_TEXT_MAX = 1000  # as a node id: a whole id may be pasted


class NodeMatch(BaseModel):
    id: str = Field(description="`job:<namespace>:<name>` or `dataset:<namespace>:<name>`")
    type: NodeKind
    namespace: str
    name: str
    system: str | None = Field(default=None, description="jobs only")


class NodeMatches(BaseModel):
    nodes: list[NodeMatch] = Field(description="best first: the id itself, a name equal to "
                                               "the text, starting with it, containing it, "
                                               "then a namespace containing it")
    more: bool = Field(description="more nodes match than `limit`: narrow the text")


def search(session: Session, *, text: str, kind: NodeKind | None = None,
           system: str | None = None, limit: int = 20) -> NodeMatches:
    """Jobs and datasets whose name or namespace holds ``text``, best first. Any case
    (ASCII letters only on SQLite, whose lower() knows no others); `%` and `_` mean
    themselves; a full node id finds that node first. ``system`` keeps jobs of that system
    (a dataset has none). A scan of both tables: fine to a few hundred thousand nodes (a
    LIKE with a leading wildcard uses no index)."""
    limit = max(1, min(limit, SEARCH_MAX))
    needle = text.strip().lower()
    found: list[tuple[tuple[int, int, str, str], NodeMatch]] = []
    exact = _exact(session, text.strip(), kind)
    kinds = [k for k in NodeKind if kind in (None, k) and not (system and k is NodeKind.DATASET)]
    for k in kinds:
        found += _matching(session, k, needle, system=system, limit=limit + 1)
    if exact is not None and (system is None or exact.system == system):
        found = [((-1, 0, "", ""), exact), *((key, m) for key, m in found if m.id != exact.id)]
    found.sort(key=lambda item: item[0])
    return NodeMatches(nodes=[m for _, m in found[:limit]], more=len(found) > limit)


def _exact(session: Session, text: str, kind: NodeKind | None) -> NodeMatch | None:
    """The node a full id names (`job:airflow/prod:ingest`), if it exists."""
    prefix = text.partition(":")[0]
    if prefix not in {k.value for k in NodeKind} or kind not in (None, NodeKind(prefix)):
        return None
    try:
        return _match_of(session, resolve(session, text))
    except (ValueError, NotFound):
        return None


def _match_of(session: Session, ref: NodeRef) -> NodeMatch:
    system = session.execute(select(JOBS.c.system).where(JOBS.c.id == ref.id)).scalar() \
        if ref.kind is NodeKind.JOB else None
    return NodeMatch(id=ref.node_id, type=ref.kind, namespace=ref.namespace, name=ref.name,
                     system=system)


def _matching(session: Session, kind: NodeKind, needle: str, *, system: str | None,
              limit: int) -> list[tuple[tuple[int, int, str, str], NodeMatch]]:
    table = JOBS if kind is NodeKind.JOB else DATASETS
    name, namespace = func.lower(table.c.name), func.lower(table.c.namespace)
    contains, starts = f"%{_like(needle)}%", f"{_like(needle)}%"
    rank = case((name == needle, 0), (name.like(starts, escape="\\"), 1),
                (name.like(contains, escape="\\"), 2), else_=3)
    columns = [table.c.namespace, table.c.name,
               table.c.system if kind is NodeKind.JOB else literal(None, String).label("system")]
    query = select(rank.label("rank"), *columns)
    if needle:
        query = query.where(or_(name.like(contains, escape="\\"),
                                namespace.like(contains, escape="\\")))
    if system is not None:
        query = query.where(JOBS.c.system == system)
    rows = session.execute(query.order_by(rank, func.length(table.c.name), table.c.name,
                                          table.c.namespace).limit(limit)).all()
    return [((r.rank, len(r.name), r.name, r.namespace),
             NodeMatch(id=node_id(kind, r.namespace, r.name), type=kind,
                       namespace=r.namespace, name=r.name, system=r.system)) for r in rows]


def _like(text: str) -> str:
    """``text`` as a LIKE pattern that matches only itself (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
