"""What the API and the CLI read besides runs: flows, cron jobs, dashboards, metrics and
lineage. Each function opens its own transaction, so routes never touch a session."""

from __future__ import annotations

from typing import Any, Literal

from interlock import clock, dashboards
from interlock.cron import status as cron_status
from interlock.cron.status import CheckView, CronJobView
from interlock.dashboards import metrics
from interlock.dashboards.models import DashboardRunPage, FlowPage, SystemsReport
from interlock.errors import NotFound
from interlock.lineage import ingest, queries
from interlock.lineage.nodes import NodeKind, Stream
from interlock.lineage.views import DatasetHistory
from interlock.store import flows as flow_store
from interlock.store.db import session_scope
from interlock.store.tables.cron import CheckStatus
from interlock.store.views import FlowRevisionPublic


def list_flows() -> list[FlowRevisionPublic]:
    with session_scope() as session:
        return [FlowRevisionPublic.of(r) for r in flow_store.list_flows(session)]


def list_revisions(namespace: str, flow_id: str) -> list[FlowRevisionPublic]:
    with session_scope() as session:
        revisions = flow_store.list_revisions(session, namespace=namespace, flow_id=flow_id)
        if not revisions:
            raise NotFound(f"flow `{namespace}/{flow_id}` is not registered")
        return [FlowRevisionPublic.of(r) for r in revisions]


def cron_jobs(*, system: str | None, status: CheckStatus | None) -> list[CronJobView]:
    with session_scope() as session:
        return cron_status.list_jobs(session, system=system, status=status)


def cron_checks(system: str, job: str, *, limit: int) -> list[CheckView]:
    with session_scope() as session:
        return cron_status.checks_of(session, system, job, limit=limit)


def dashboard_runs(query: dashboards.RunQuery, *, limit: int,
                   cursor: str | None) -> DashboardRunPage:
    with session_scope() as session:
        return dashboards.list_runs(session, query=query, limit=limit, cursor=cursor)


def system_stats(window: dashboards.Window) -> SystemsReport:
    with session_scope() as session:
        return dashboards.system_stats(session, window=window, now=clock.now())


def flow_stats(window: dashboards.Window, *, namespace: str | None, limit: int,
               cursor: str | None) -> FlowPage:
    with session_scope() as session:
        return dashboards.flow_stats(session, window=window, namespace=namespace, limit=limit,
                                     cursor=cursor)


def metrics_scrape() -> bytes:
    with session_scope() as session:
        return metrics.scrape(session, now=clock.now())


def receive_lineage(event: Any) -> None:
    """Store one OpenLineage event (validated inside; nothing of a bad one is kept)."""
    with session_scope() as session:
        ingest.receive(session, event)


def lineage_graph(node: str, *, depth: int) -> dict[str, Any]:
    with session_scope() as session:
        return queries.lineage(session, node, depth=depth)


def lineage_impact(node: str, *, direction: Stream, depth: int) -> dict[str, Any]:
    with session_scope() as session:
        return queries.impact(session, node, stream=direction, depth=depth)


def search_nodes(*, text: str, kind: NodeKind | None, system: str | None,
                 limit: int) -> queries.NodeMatches:
    """Lineage nodes by name, for the console's map (`GET /lineage/nodes`)."""
    with session_scope() as session:
        return queries.search(session, text=text, kind=kind, system=system, limit=limit)


def dataset_history(*, namespace: str, name: str, limit: int, cursor: str | None,
                    access: Literal["read", "write"] | None) -> DatasetHistory:
    with session_scope() as session:
        return queries.history(session, namespace=namespace, name=name, limit=limit,
                               cursor=cursor, access=access)

