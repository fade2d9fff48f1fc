"""Lineage on SQLite and PostgreSQL: OpenLineage intake from the real openlineage-python
client, 400s that name the field and store nothing, lineage and impact across Airflow,
Dagster, Interlock and cron in one query, dataset history, declared and emitted lineage."""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from textwrap import dedent
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from harness_process import free_port
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    JobFacet,
    documentation_dataset,
    job_type_job,
    parent_run,
    processing_engine_run,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from sqlalchemy import func, select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock import clock
from interlock.access.permissions import Role
from interlock.adapters.openlineage import attempt_uuid, run_uuid
from interlock.api.main import create_app
from interlock.lineage import emitted, queries
from interlock.lineage.validate import check
from interlock.lineage.views import Impact, LineageGraph
from interlock.operations import runs as ops
from interlock.store import runs as run_store
from interlock.store.db import session_scope
from interlock.store.flows import get_revision, load_flow_of
from interlock.store.outbox import Dispatcher
from interlock.store.tables import Attempt
from interlock.store.tables.lineage import (
    LineageDataset,
    LineageEdge,
    LineageEvent,
    LineageIO,
    LineageJob,
    LineageJobParent,
    LineageRun,
)

API = "/api/v1"
LINEAGE = f"{API}/lineage"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)

ORDERS = ("postgres://warehouse:5432", "public.orders")
DAILY = ("s3://lake", "revenue/daily.parquet")
REPORT = ("postgres://reports:5432", "public.revenue_report")
EXPORT = ("file://db1", "/srv/exports/revenue.csv")

FLOW = dedent("""
    id: revenue-report
    namespace: tests.lineage
    nodes:
      build:
        uses: noop
        consumes: [{namespace: "s3://lake", name: revenue/daily.parquet}]
        produces: [{namespace: "postgres://reports:5432", name: public.revenue_report}]
      publish:
        uses: noop
        needs: [build]
""").lstrip()
NODE_JOB = "job:interlock:tests.lineage/revenue-report.build"


@pytest.fixture
def client(embedded: Dispatcher) -> Iterator[TestClient]:
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        yield c


# --- building events with the openlineage-python client ----------------------------------


def _event(state: RunState, namespace: str, name: str, *, run_id: str | None = None,
           inputs: Sequence[tuple[str, str]] = (), outputs: Sequence[tuple[str, str]] = (),
           parent: tuple[str, str, str] | None = None, integration: str | None = None,
           engine: str | None = None, at: datetime = T0) -> RunEvent:
    run_facets: dict[str, Any] = {}
    if parent is not None:
        parent_run_id, parent_ns, parent_name = parent
        run_facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent_run_id),
            job=parent_run.Job(namespace=parent_ns, name=parent_name))
    if engine is not None:
        run_facets["processing_engine"] = processing_engine_run.ProcessingEngineRunFacet(
            version="1.13.27", name=engine)
    job_facets: dict[str, JobFacet] = {"jobType": job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration=integration, jobType="TASK")} if integration else {}
    return RunEvent(eventType=state, eventTime=at.isoformat(), producer=PRODUCER,
                    run=Run(runId=run_id or str(uuid.uuid4()), facets=run_facets),
                    job=Job(namespace=namespace, name=name, facets=job_facets),
                    inputs=[InputDataset(namespace=n, name=d) for n, d in inputs],
                    outputs=[OutputDataset(namespace=n, name=d) for n, d in outputs])


def _post(client: TestClient, event: RunEvent | dict[str, Any]) -> Any:
    body = Serde.to_json(event) if isinstance(event, RunEvent) else event
    if isinstance(body, str):
        return client.post(LINEAGE, content=body, headers={"Content-Type": "application/json"})
    return client.post(LINEAGE, json=body)


def _counts() -> dict[str, int]:
    with session_scope() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) or 0
                for t in (LineageJob, LineageDataset, LineageEdge, LineageJobParent,
                          LineageRun, LineageIO, LineageEvent)}


def _estate(client: TestClient) -> None:
    """An Airflow task writes orders, a Dagster job turns them into a daily parquet, an
    Interlock flow node (declared) makes a report of it, a cron job exports the report."""
    dag_run = str(uuid.uuid4())
    for state in (RunState.START, RunState.COMPLETE):
        assert _post(client, _event(state, "prod", "ingest_orders", run_id=dag_run,
                                    integration="AIRFLOW")).status_code == 201
    task = str(uuid.uuid4())
    for state in (RunState.START, RunState.COMPLETE):
        event = _event(state, "prod", "ingest_orders.load", run_id=task, outputs=[ORDERS],
                       parent=(dag_run, "prod", "ingest_orders"), integration="AIRFLOW")
        assert _post(client, event).status_code == 201
    assert _post(client, _event(RunState.COMPLETE, "main", "daily_revenue", engine="Dagster",
                                inputs=[ORDERS], outputs=[DAILY])).status_code == 201
    assert client.post(f"{API}/flows", json={"source": FLOW}).status_code == 201
    assert _post(client, _event(RunState.COMPLETE, "cron/db1", "export_report",
                                inputs=[REPORT], outputs=[EXPORT])).status_code == 201


def _id(kind: str, ref: tuple[str, str]) -> str:
    return f"{kind}:{ref[0]}:{ref[1]}"


# --- intake ------------------------------------------------------------------------------


def test_the_openlineage_client_posts_to_interlock_over_http(embedded: Dispatcher) -> None:
    """The client's own HttpTransport (gzip on, its API-key auth carrying an Interlock token of
    the `producer` role), pointed at Interlock, with no other change."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(dispatcher=embedded), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        token = bearer(Role.PRODUCER, name="openlineage-producer")["Authorization"].split()[1]
        transport = HttpTransport(HttpConfig(url=f"http://127.0.0.1:{port}",
                                             endpoint="api/v1/lineage",
                                             compression=HttpCompression.GZIP,
                                             auth=ApiKeyTokenProvider({"apiKey": token})))
        ol = OpenLineageClient(transport=transport)
        run_id, parent_id = str(uuid.uuid4()), str(uuid.uuid4())
        for state, at in ((RunState.START, T0), (RunState.COMPLETE, T0 + timedelta(minutes=3))):
            ol.emit(_event(state, "prod", "ingest_orders.load", run_id=run_id, at=at,
                           inputs=[("s3://landing", "orders/2026-11-25.csv")], outputs=[ORDERS],
                           parent=(parent_id, "prod", "ingest_orders"), integration="AIRFLOW"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    with session_scope() as session:
        run = session.get(LineageRun, run_id)
        assert run is not None
        assert (run.state, run.started_at, run.ended_at) == ("COMPLETE", T0,
                                                              T0 + timedelta(minutes=3))
        assert (run.parent_run_id, run.parent_job_namespace, run.parent_job_name) == (
            parent_id, "prod", "ingest_orders")
        assert run.facets["parent"]["run"]["runId"] == parent_id  # facets kept as sent
        job = session.scalars(select(LineageJob).where(LineageJob.name == "ingest_orders.load")
                              ).one()
        assert job.system == "airflow/prod"  # integration AIRFLOW + namespace prod
        assert job.facets["jobType"]["integration"] == "AIRFLOW"
        dag = session.scalars(select(LineageJob).where(LineageJob.name == "ingest_orders")).one()
        assert dag.system == "airflow/prod"
        assert session.get(LineageJobParent, (dag.id, job.id)) is not None
        edges = session.execute(select(LineageEdge.direction, LineageEdge.source)).all()
        assert sorted(edges) == [("in", "openlineage"), ("out", "openlineage")]
        assert session.scalar(select(func.count()).select_from(LineageIO)) == 2  # per run
    assert _counts()["lineage_events"] == 2


def test_a_replayed_event_is_stored_once(client: TestClient) -> None:
    event = _event(RunState.COMPLETE, "main", "daily_revenue", inputs=[ORDERS], outputs=[DAILY])
    assert _post(client, event).status_code == 201
    before = _counts()
    again = _post(client, event)
    assert (again.status_code, again.content) == (201, b"")  # Marquez: 201, empty body
    assert _counts() == before


def test_job_and_dataset_events_are_accepted(client: TestClient) -> None:
    job = JobEvent(eventTime=T0.isoformat(), producer=PRODUCER,
                   job=Job(namespace="cron/db1", name="export_report"),
                   inputs=[InputDataset(namespace=REPORT[0], name=REPORT[1])],
                   outputs=[OutputDataset(namespace=EXPORT[0], name=EXPORT[1])])
    documented = documentation_dataset.DocumentationDatasetFacet(description="daily revenue")
    dataset = DatasetEvent(eventTime=T0.isoformat(), producer=PRODUCER, dataset=StaticDataset(
        namespace=REPORT[0], name=REPORT[1], facets={"documentation": documented}))
    for event in (job, dataset):
        resp = client.post(LINEAGE, content=Serde.to_json(event),
                           headers={"Content-Type": "application/json"})
        assert resp.status_code == 201, resp.text
    graph = _graph(client, "job:cron/db1:export_report", depth=0)
    assert set(graph) == {"job:cron/db1:export_report", _id("dataset", REPORT),
                          _id("dataset", EXPORT)}
    with session_scope() as session:
        facets = session.scalars(select(LineageDataset.facets).where(
            LineageDataset.name == REPORT[1])).one()
        assert facets["documentation"]["description"] == "daily revenue"
        assert session.scalar(select(func.count()).select_from(LineageIO)) == 0  # no run
        assert session.scalar(select(func.count()).select_from(LineageRun)) == 0


def _valid() -> dict[str, Any]:
    return Serde.to_dict(_event(RunState.START, "main", "job", inputs=[ORDERS],
                                outputs=[DAILY]))


@pytest.mark.parametrize(("change", "path", "says"), [
    (lambda e: e["run"].pop("runId"), "run.runId", "is required"),
    (lambda e: e["run"].update(runId="abc"), "run.runId", "'abc' is not a 'uuid'"),
    (lambda e: e.update(eventTime="2026-11-25 6am"), "eventTime", "is not a 'date-time'"),
    (lambda e: e.update(eventTime="2026-11-25T06:00:00"), "eventTime", "is not a 'date-time'"),
    (lambda e: e.update(inputs={"namespace": "x", "name": "y"}), "inputs",
     "is not of type 'array'"),
    (lambda e: e["outputs"][0].pop("namespace"), "outputs[0].namespace", "is required"),
    (lambda e: e.update(eventType="DONE"), "eventType", "is not one of"),
    (lambda e: e["job"].update(name=""), "job.name", "must not be empty"),
    (lambda e: e["run"]["facets"].update(parent={
        "_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/"
        "ParentRunFacet.json", "run": {"runId": "nope"}, "job": {"namespace": "a", "name": "b"}}),
     "run.facets.parent.run.runId", "'nope' is not a 'uuid'"),
    (lambda e: e["run"]["facets"].update(custom={"value": 1}), "run.facets.custom._producer",
     "is required"),
])
def test_a_malformed_event_is_400_naming_the_field_and_stores_nothing(
        client: TestClient, change: Any, path: str, says: str) -> None:
    assert _post(client, _valid()).status_code == 201
    before = _counts()
    event = _valid()
    change(event)
    resp = _post(client, event)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert path in body["detail"] and says in body["detail"]
    assert body["problems"][0]["path"] == path
    assert _counts() == before


def test_bodies_that_are_not_events_are_400(client: TestClient) -> None:
    before = _counts()
    for body in (b"{not json", b"[1, 2]", b'"START"'):
        resp = client.post(LINEAGE, content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code == 400, resp.text
    bad_gzip = client.post(LINEAGE, content=b"\x1f\x8bxx", headers={"Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    assert _counts() == before


def test_an_event_the_store_refuses_midway_leaves_nothing_behind(
        client: TestClient, store_url: str) -> None:
    """PostgreSQL refuses a NUL in a dataset name after the job and event rows were
    written: the transaction takes them back with it."""
    assert _post(client, _valid()).status_code == 201
    before = _counts()
    event = _valid()
    event["outputs"].append({"namespace": "s3://lake", "name": "bad\u0000name"})
    resp = _post(client, event)
    if store_url.startswith("postgresql"):
        assert resp.status_code == 400, resp.text
        assert _counts() == before
    else:  # SQLite keeps the NUL: the event is whole
        assert resp.status_code == 201


# --- queries -----------------------------------------------------------------------------


def _graph(client: TestClient, node: str, depth: int) -> dict[str, dict[str, Any]]:
    resp = client.get(LINEAGE, params={"nodeId": node, "depth": depth})
    assert resp.status_code == 200, resp.text
    LineageGraph.model_validate(resp.json())  # the route skips validation: the shape holds
    return {n["id"]: n for n in resp.json()["graph"]}


def test_lineage_across_four_systems_in_one_query(client: TestClient) -> None:
    _estate(client)
    graph = _graph(client, _id("dataset", ORDERS), depth=5)
    systems = {n["data"]["system"] for n in graph.values() if n["type"] == "JOB"}
    assert systems == {"airflow/prod", "dagster/main", "interlock", "cron/db1"}
    assert set(graph) == {
        "job:prod:ingest_orders.load", _id("dataset", ORDERS), "job:main:daily_revenue",
        _id("dataset", DAILY), NODE_JOB, _id("dataset", REPORT), "job:cron/db1:export_report",
        _id("dataset", EXPORT)}
    orders = graph[_id("dataset", ORDERS)]
    assert orders["inEdges"] == [{"origin": "job:prod:ingest_orders.load",
                                  "destination": _id("dataset", ORDERS)}]
    assert orders["outEdges"] == [{"origin": _id("dataset", ORDERS),
                                   "destination": "job:main:daily_revenue"}]
    node = graph[NODE_JOB]  # its edges are declared by the flow, not reported by anyone
    assert node["inEdges"] == [{"origin": _id("dataset", DAILY), "destination": NODE_JOB}]
    assert node["outEdges"] == [{"origin": NODE_JOB, "destination": _id("dataset", REPORT)}]
    assert node["data"]["id"] == {"namespace": "interlock",
                                  "name": "tests.lineage/revenue-report.build"}
    first = client.get(LINEAGE, params={"nodeId": _id("dataset", ORDERS)}).json()["graph"][0]
    assert first["id"] == _id("dataset", ORDERS) and first["type"] == "DATASET"


def test_depth_counts_jobs_in_each_direction(client: TestClient) -> None:
    _estate(client)
    start = "job:main:daily_revenue"
    assert set(_graph(client, start, depth=0)) == {
        start, _id("dataset", ORDERS), _id("dataset", DAILY)}
    assert set(_graph(client, start, depth=1)) == {
        start, _id("dataset", ORDERS), _id("dataset", DAILY), "job:prod:ingest_orders.load",
        NODE_JOB, _id("dataset", REPORT)}
    assert "job:cron/db1:export_report" in _graph(client, start, depth=2)
    lonely = "job:interlock:tests.lineage/revenue-report.publish"  # no datasets at all
    assert set(_graph(client, lonely, depth=20)) == {lonely}
    too_deep = client.get(LINEAGE, params={"nodeId": start, "depth": queries.MAX_DEPTH + 1})
    assert too_deep.status_code == 422


def test_the_node_cap_truncates_the_walk(client: TestClient) -> None:
    _estate(client)
    with session_scope() as session:
        capped = queries.lineage(session, _id("dataset", ORDERS), depth=20, max_nodes=3)
        whole = queries.lineage(session, _id("dataset", ORDERS), depth=20)
    assert (len(capped["graph"]), capped["truncated"]) == (3, True)
    assert capped["graph"][0]["id"] == _id("dataset", ORDERS)
    assert {n["id"] for n in capped["graph"][1:]} == {  # the nearest
        "job:main:daily_revenue", "job:prod:ingest_orders.load"}
    assert (len(whole["graph"]), whole["truncated"]) == (8, False)


def test_unknown_nodes_are_404_and_malformed_ids_400(client: TestClient) -> None:
    _estate(client)
    for path in ("", "/impact"):
        missing = client.get(f"{LINEAGE}{path}", params={"nodeId": "job:prod:no_such_dag"})
        assert missing.status_code == 404
        assert "job:prod:no_such_dag" in missing.json()["detail"]
        for bad in ("prod:ingest_orders", "task:prod:x", "job:nocolon", "job::"):
            resp = client.get(f"{LINEAGE}{path}", params={"nodeId": bad})
            assert resp.status_code == 400, (bad, resp.text)


def test_impact_downstream_of_an_airflow_dag(client: TestClient) -> None:
    """The DAG job has no datasets of its own: its tasks (children by parent facet) do."""
    _estate(client)
    resp = client.get(f"{LINEAGE}/impact", params={"nodeId": "job:prod:ingest_orders"})
    assert resp.status_code == 200, resp.text
    impact = resp.json()
    Impact.model_validate(impact)
    assert impact["systems"] == ["airflow/prod", "cron/db1", "dagster/main", "interlock"]
    assert [j["name"] for j in impact["jobs"]["airflow/prod"]] == ["ingest_orders.load"]
    assert [j["name"] for j in impact["jobs"]["interlock"]] == [
        "tests.lineage/revenue-report.build"]
    assert impact["flows"] == ["tests.lineage/revenue-report"]
    assert [d["id"] for d in impact["datasets"]] == [
        _id("dataset", d) for d in (ORDERS, DAILY, REPORT, EXPORT)]
    assert [d["distance"] for d in impact["datasets"]] == [1, 3, 5, 7]


def test_impact_upstream_of_a_cron_job(client: TestClient) -> None:
    _estate(client)
    resp = client.get(f"{LINEAGE}/impact", params={
        "nodeId": "job:cron/db1:export_report", "direction": "upstream", "depth": 2})
    impact = resp.json()
    assert impact["systems"] == ["dagster/main", "interlock"]  # Airflow is 3 jobs up
    assert impact["flows"] == ["tests.lineage/revenue-report"]
    assert [d["id"] for d in impact["datasets"]] == [
        _id("dataset", d) for d in (REPORT, DAILY, ORDERS)]
    deeper = client.get(f"{LINEAGE}/impact", params={
        "nodeId": "job:cron/db1:export_report", "direction": "upstream"}).json()
    assert "airflow/prod" in deeper["systems"]


def _history_url(ref: tuple[str, str]) -> str:
    return f"{LINEAGE}/datasets/{quote(ref[0], safe='')}/{quote(ref[1], safe='')}/history"


def test_dataset_history_newest_first_by_pages(client: TestClient) -> None:
    runs = [str(uuid.uuid4()) for _ in range(3)]
    for i, run_id in enumerate(runs):
        at = T0 + timedelta(days=i)
        for state, when in ((RunState.START, at), (RunState.COMPLETE, at + timedelta(hours=1))):
            assert _post(client, _event(state, "main", "daily_revenue", run_id=run_id, at=when,
                                        engine="Dagster", inputs=[ORDERS], outputs=[DAILY])
                         ).status_code == 201
    reader = str(uuid.uuid4())
    assert _post(client, _event(RunState.COMPLETE, "cron/db1", "export", run_id=reader,
                                at=T0 + timedelta(days=5), inputs=[DAILY])).status_code == 201

    first = client.get(_history_url(DAILY), params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["dataset"] == _id("dataset", DAILY)
    assert [(i["runId"], i["access"]) for i in page["items"]] == [
        (reader, "read"), (runs[2], "write")]
    assert page["items"][1] | {"at": None} == {
        "jobId": "job:main:daily_revenue", "job": {"namespace": "main", "name": "daily_revenue"},
        "system": "dagster/main", "access": "write", "runId": runs[2], "state": "COMPLETE",
        "at": None, "source": "openlineage"}
    second = client.get(_history_url(DAILY), params={"limit": 2, "cursor": page["nextCursor"]})
    assert [i["runId"] for i in second.json()["items"]] == [runs[1], runs[0]]
    assert second.json()["nextCursor"] is None
    writes = client.get(_history_url(DAILY), params={"access": "write"}).json()["items"]
    assert [w["runId"] for w in writes] == [runs[2], runs[1], runs[0]]
    assert client.get(_history_url(DAILY), params={"cursor": "bogus"}).status_code == 400
    assert client.get(_history_url(("s3://lake", "nope"))).status_code == 404
    assert client.get(f"{LINEAGE}/datasets/s3://lake/x/history").status_code == 404


# --- declared and emitted lineage --------------------------------------------------------


def _declared() -> set[tuple[str, str, str]]:
    with session_scope() as session:
        rows = session.execute(
            select(LineageJob.name, LineageEdge.direction, LineageDataset.name)
            .join(LineageEdge, LineageEdge.job_id == LineageJob.id)
            .join(LineageDataset, LineageDataset.id == LineageEdge.dataset_id)
            .where(LineageEdge.source == "declared")).all()
    return {(job, direction, dataset) for job, direction, dataset in rows}


def test_registering_a_flow_records_its_declared_edges(store_url: str) -> None:
    ops.register(FLOW)
    node = "tests.lineage/revenue-report.build"
    assert _declared() == {(node, "in", DAILY[1]), (node, "out", REPORT[1])}
    changed = FLOW.replace("public.revenue_report", "public.revenue_v2")
    ops.register(changed)
    assert _declared() == {(node, "in", DAILY[1]), (node, "out", "public.revenue_v2")}
    with session_scope() as session:
        flow_job = session.scalars(select(LineageJob).where(
            LineageJob.name == "tests.lineage/revenue-report")).one()
        children = session.scalars(select(LineageJobParent.child_id).where(
            LineageJobParent.parent_id == flow_job.id)).all()
    assert len(children) == 2  # build and publish


def _attempt(run_id: str, *, handle: dict[str, Any] | None, params: dict[str, Any]) -> int:
    with session_scope() as session:
        attempt = Attempt(run_id=run_id, node_id="build", number=1, key=f"{run_id}.build.1",
                          uses="dagster", state="succeeded", params=params, handle=handle,
                          outputs={}, created_at=clock.now(), finished_at=T0)
        session.add(attempt)
        session.flush()
        return attempt.id


def _new_run() -> str:
    flow, _ = ops.register(FLOW)
    with session_scope() as session:
        revision = get_revision(session, namespace=flow.namespace, flow_id=flow.id)
        return run_store.create_run(session, revision=revision, inputs={},
                                    trigger={"type": "test"}, actor="test")


def _record(attempt_id: int) -> int:
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        revision = get_revision(session, namespace="tests.lineage", flow_id="revenue-report")
        return emitted.record_attempt(session, attempt, load_flow_of(revision))


def test_a_succeeded_attempt_emits_its_run_and_links_the_foreign_one(store_url: str) -> None:
    run_id = _new_run()
    dagster_run = str(uuid.uuid4())
    attempt_id = _attempt(run_id, params={"system": "dagster/main", "job": "report_job"},
                          handle={"kind": "dagster", "external_id": dagster_run,
                                  "system": "dagster/main", "url": None, "data": {}})
    assert _record(attempt_id) == 2
    assert _record(attempt_id) == 0  # a second finish of the same attempt is a replay
    key = f"{run_id}.build.1"
    with session_scope() as session:
        mine = session.get(LineageRun, attempt_uuid(key))
        assert mine is not None and mine.source == "emitted"
        assert (mine.parent_run_id, mine.parent_job_namespace, mine.parent_job_name) == (
            run_uuid(run_id), "interlock", "tests.lineage/revenue-report")
        foreign = session.get(LineageRun, dagster_run)  # Dagster's run id is a UUID: kept
        assert foreign is not None
        assert (foreign.parent_run_id, foreign.parent_job_namespace,
                foreign.parent_job_name) == (attempt_uuid(key), "interlock",
                                             "tests.lineage/revenue-report.build")
        assert foreign.facets["parent"]["root"]["run"]["runId"] == run_uuid(run_id)
        job = session.get(LineageJob, foreign.job_id)
        assert job is not None and (job.namespace, job.name, job.system) == (
            "dagster/main", "report_job", "dagster/main")
        payloads = session.scalars(select(LineageEvent.payload)).all()
    for payload in payloads:
        check(payload)  # valid against the spec, as any consumer would need
    history = queries_history(REPORT)
    assert [(h.run_id, h.access, h.source) for h in history] == [
        (attempt_uuid(key), "write", "emitted")]


def queries_history(ref: tuple[str, str]) -> list[Any]:
    with session_scope() as session:
        return queries.history(session, namespace=ref[0], name=ref[1]).items


def test_impact_of_an_interlock_node_reaches_the_foreign_run_it_started(
        store_url: str) -> None:
    run_id = _new_run()
    attempt_id = _attempt(run_id, params={"system": "airflow/prod", "dag_id": "load_report"},
                          handle={"kind": "airflow", "external_id": f"{run_id}.build.1",
                                  "system": "airflow/prod", "url": None,
                                  "data": {"dag_id": "load_report"}})
    assert _record(attempt_id) == 2
    with session_scope() as session:
        impact = queries.impact(session, "job:airflow/prod:load_report",
                                stream=queries.Stream.DOWNSTREAM)
    assert impact["flows"] == ["tests.lineage/revenue-report"]  # its parent node, and on
    assert [d["id"] for d in impact["datasets"]] == [_id("dataset", REPORT)]


def test_lineage_never_fails_the_attempt_it_records(store_url: str) -> None:
    run_id = _new_run()
    attempt_id = _attempt(run_id, params={}, handle=None)
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None
        attempt.remote_status = "recorded in the same transaction"
        broken = load_flow_of(get_revision(session, namespace="tests.lineage",
                                           flow_id="revenue-report"))
        broken = broken.model_copy(update={"nodes": {}})  # the node is missing: a bug
        assert emitted.record_attempt(session, attempt, broken) == 0
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        assert attempt is not None and attempt.remote_status == "recorded in the same transaction"


def test_a_node_with_no_datasets_and_nothing_foreign_emits_nothing(store_url: str) -> None:
    run_id = _new_run()
    with session_scope() as session:
        attempt = Attempt(run_id=run_id, node_id="publish", number=1, key=f"{run_id}.publish.1",
                          uses="noop", state="succeeded", params={}, outputs={},
                          handle={"kind": "noop", "external_id": "k"}, created_at=clock.now())
        session.add(attempt)
        session.flush()
        flow = load_flow_of(get_revision(session, namespace="tests.lineage",
                                         flow_id="revenue-report"))
        assert emitted.record_attempt(session, attempt, flow) == 0
