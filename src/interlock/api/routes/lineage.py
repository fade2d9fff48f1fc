"""Lineage: OpenLineage intake compatible with Marquez's, and the queries over the graph.

Point an OpenLineage HTTP transport at Interlock (`url: http://interlock:8000`,
`endpoint: api/v1/lineage`) and it needs no other change: one event per POST, 201 with an
empty body, gzip bodies accepted.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES, ErrorBody
from interlock.api.security import requires
from interlock.errors import NotFound
from interlock.lineage import queries
from interlock.lineage.nodes import NodeKind, Stream
from interlock.lineage.validate import InvalidEvent
from interlock.lineage.views import DatasetHistory, Impact, LineageGraph
from interlock.operations import reads

router = APIRouter(prefix="/lineage", tags=["lineage"], responses=ERROR_RESPONSES)

MAX_BODY = 16 * 1024 * 1024
NodeIdQuery = Annotated[str, Query(
    alias="nodeId", min_length=1, max_length=1000,
    description="`job:<namespace>:<name>` or `dataset:<namespace>:<name>`")]
DepthQuery = Annotated[int, Query(ge=0, le=queries.MAX_DEPTH,
                                  description="how many jobs away, in each direction")]
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL refuses NUL)


@router.post("", status_code=201, response_class=Response,
             dependencies=[requires(Permission.LINEAGE_CREATE)], responses={
    201: {"description": "stored (or a replay of an event stored before): empty body"},
    400: {"model": ErrorBody, "description": "not an OpenLineage event; `problems` names "
                                             "each bad field by its JSON path"},
    413: {"model": ErrorBody, "description": "body larger than 16 MiB"}},
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "description": "an OpenLineage RunEvent, DatasetEvent "
                                                    "or JobEvent (spec 2-0-2)"}}}}})
async def post_event(request: Request) -> Response:
    """Store one OpenLineage event, all of it or (if it is malformed) none of it."""
    body = await request.body()
    try:
        event = _parse(body, request.headers.get("content-encoding", ""))
        await run_in_threadpool(reads.receive_lineage, event)
    except InvalidEvent as exc:
        return JSONResponse(status_code=400, content={
            "detail": f"not a valid OpenLineage event: {exc}",
            "problems": [{"path": p.path, "message": p.message} for p in exc.problems]})
    except _TooLarge:
        return JSONResponse(status_code=413, content={
            "detail": f"the event is larger than {MAX_BODY} bytes"})
    return Response(status_code=201)


class _TooLarge(Exception):
    pass


def _parse(body: bytes, encoding: str) -> Any:
    if len(body) > MAX_BODY:
        raise _TooLarge
    if encoding.strip().lower() == "gzip":
        try:
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(MAX_BODY + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"the body is not valid gzip: {exc}") from exc
        if len(body) > MAX_BODY:
            raise _TooLarge
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"the body is not JSON: {str(exc)[:200]}") from exc


@router.get("", dependencies=[requires(Permission.LINEAGE_READ)],
            response_model=LineageGraph)
def get_lineage(node: NodeIdQuery, depth: DepthQuery = queries.MAX_DEPTH) -> Response:
    """The graph around a node, in Marquez's shape: upstream and downstream to `depth` jobs."""
    return _json(reads.lineage_graph(node, depth=depth))


@router.get("/impact", dependencies=[requires(Permission.LINEAGE_READ)],
            response_model=Impact)
def get_impact(node: NodeIdQuery,
               direction: Annotated[Stream, Query(
                   description="downstream: what fails with it; upstream: what it needs")]
               = Stream.DOWNSTREAM,
               depth: DepthQuery = queries.MAX_DEPTH) -> Response:
    """Jobs (by system), datasets, Interlock flows and systems affected by a node."""
    return _json(reads.lineage_impact(node, direction=direction, depth=depth))


@router.get("/nodes", dependencies=[requires(Permission.LINEAGE_READ)],
            response_model=queries.NodeMatches)
def search_nodes(q: Annotated[str, Query(
                     max_length=queries.SEARCH_TEXT_MAX, pattern=PRINTABLE,
                     description="part of a name or namespace, any case; or a whole node id")]
                 = "",
                 kind: Annotated[NodeKind | None, Query(alias="type")] = None,
                 system: Annotated[str | None, Query(
                     min_length=1, max_length=200, pattern=PRINTABLE,
                     description="only jobs of this system (`airflow/prod`)")] = None,
                 limit: Annotated[int, Query(ge=1, le=queries.SEARCH_MAX)] = 20,
                 ) -> queries.NodeMatches:
    """Jobs and datasets by name, to start a lineage graph from: best matches first."""
    return reads.search_nodes(text=q, kind=kind, system=system, limit=limit)


def _json(data: dict[str, Any]) -> Response:
    """Plain data straight to JSON: validating thousands of nodes as models would cost
    more than the query (the shapes are the documented models; the tests hold them to it)."""
    return Response(content=to_json(data), media_type="application/json")


@router.get("/datasets/{dataset:path}", dependencies=[requires(Permission.LINEAGE_READ)],
            response_model=DatasetHistory)
def dataset_history(dataset: Annotated[str, Path(
                        description="`{namespace}/{name}/history`, namespace and name each "
                                    "percent-encoded (`/` as `%2F`): "
                                    "`postgres:%2F%2Frisk/public.hits/history`")],
                    request: Request,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    cursor: Annotated[str | None, Query(max_length=500)] = None,
                    access: Annotated[Literal["read", "write"] | None, Query(
                        description="only reads, or only writes")] = None) -> DatasetHistory:
    """Who read or wrote a dataset, when, in which run; newest first, by pages."""
    namespace, name = _dataset_of(request)
    return reads.dataset_history(namespace=namespace, name=name, limit=limit, cursor=cursor,
                                 access=access)


def _dataset_of(request: Request) -> tuple[str, str]:
    """Namespace and name from the raw path: dataset namespaces are URIs full of `/`,
    which the decoded path can no longer tell from the separators."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    tail = raw.decode("utf-8", "replace").partition(f"{router.prefix}/datasets/")[2]
    parts = tail.split("/")
    if len(parts) != 3 or parts[2] != "history" or not parts[0] or not parts[1]:
        raise NotFound("expected /lineage/datasets/{namespace}/{name}/history, with any `/` "
                       "in the namespace or name percent-encoded as %2F")
    return unquote(parts[0]), unquote(parts[1])
