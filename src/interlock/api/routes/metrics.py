"""`GET /metrics`: Prometheus text exposition, read from the store at each scrape."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from interlock.access.permissions import Permission
from interlock.api.errors import ERROR_RESPONSES
from interlock.api.security import requires
from interlock.dashboards import metrics
from interlock.operations import reads

router = APIRouter(tags=["metrics"])

SCRAPE = {
    "description": "Prometheus text format 0.0.4 (metric names, labels and meanings: "
                   "docs/dashboards.md)",
    "content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}},
}


@router.get("/metrics", dependencies=[requires(Permission.SYSTEMS_READ)],
            response_class=Response, include_in_schema=True,
            responses={200: SCRAPE, 503: ERROR_RESPONSES[503]})
def scrape() -> Response:
    """Every metric computed from the store now, so all API replicas agree."""
    body = reads.metrics_scrape()
    return Response(content=body, media_type=metrics.CONTENT_TYPE)
