"""`GET /api/v1/lineage/nodes`: finding a start node for the lineage map by name, on SQLite
and PostgreSQL. Best matches first, filters by kind and system, a whole node id (namespaces
with colons) found first; `%` and `_` match only themselves; hostile text, limits and kinds
are refused (422) or match nothing, never a 500; `lineage:read` is needed."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.lineage.queries import SEARCH_MAX, SEARCH_TEXT_MAX
from interlock.store.outbox import Dispatcher

API = "/api/v1"
NODES = f"{API}/lineage/nodes"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
WAREHOUSE = "postgres://warehouse:5432"
HOSTILE = "<img src=x onerror=alert(1)>"
# (job namespace, job name, inputs, outputs): datasets as (namespace, name)
JOBS = [
    ("airflow/prod", "orders", [], [(WAREHOUSE, "public.orders")]),
    ("airflow/prod", "orders_cleanup", [(WAREHOUSE, "public.orders")], []),
    ("dagster/main", "daily_orders", [(WAREHOUSE, "public.orders")],
     [("s3://lake", "orders/daily.parquet")]),
    ("cron/db1", "export", [("s3://lake", "orders/daily.parquet")],
     [("file://db1", "/srv/a_b.csv"), ("file://db1", "/srv/axb.csv")]),
    ("cron/db1", HOSTILE, [], [("file://db1", "/srv/100%.csv")]),
]


def _event(namespace: str, name: str, inputs: list[tuple[str, str]],
           outputs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": "2026-11-25T06:00:00+00:00",
            "producer": PRODUCER, "schemaURL": SCHEMA, "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": namespace, "name": name},
            "inputs": [{"namespace": n, "name": d} for n, d in inputs],
            "outputs": [{"namespace": n, "name": d} for n, d in outputs]}


@pytest.fixture
def client(embedded: Dispatcher) -> Iterator[TestClient]:
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        for job in JOBS:
            assert c.post(f"{API}/lineage", json=_event(*job)).status_code == 201
        c.headers.update(bearer(Role.VIEWER))
        yield c


def _ids(client: TestClient, **params: Any) -> list[str]:
    resp = client.get(NODES, params=params)
    assert resp.status_code == 200, resp.text
    return [n["id"] for n in resp.json()["nodes"]]


def test_best_matches_come_first_and_filters_narrow_them(client: TestClient) -> None:
    got = client.get(NODES, params={"q": "ORDERS"}).json()
    assert got["more"] is False
    assert [n["id"] for n in got["nodes"]] == [
        "job:airflow/prod:orders",                      # the name itself
        "job:airflow/prod:orders_cleanup",              # starts with it
        "dataset:s3://lake:orders/daily.parquet",
        "job:dagster/main:daily_orders",                # contains it (shorter names first)
        f"dataset:{WAREHOUSE}:public.orders",
    ]
    first = got["nodes"][0]
    assert first == {"id": "job:airflow/prod:orders", "type": "job",
                     "namespace": "airflow/prod", "name": "orders", "system": "airflow/prod"}
    assert _ids(client, q="orders", type="dataset") == [
        "dataset:s3://lake:orders/daily.parquet", f"dataset:{WAREHOUSE}:public.orders"]
    assert _ids(client, q="orders", system="dagster/main") == ["job:dagster/main:daily_orders"]
    assert _ids(client, q="WAREHOUSE") == [f"dataset:{WAREHOUSE}:public.orders"]  # namespace
    assert _ids(client, q="orders", limit=2) == _ids(client, q="orders")[:2]
    assert client.get(NODES, params={"q": "orders", "limit": 2}).json()["more"] is True
    assert len(_ids(client)) == 10  # no text: every node (5 jobs, 5 datasets), up to the limit


def test_a_whole_node_id_finds_that_node_first(client: TestClient) -> None:
    assert _ids(client, q=f"dataset:{WAREHOUSE}:public.orders")[0] == \
        f"dataset:{WAREHOUSE}:public.orders"
    assert _ids(client, q=f"  job:cron/db1:{HOSTILE}  ") == [f"job:cron/db1:{HOSTILE}"]
    assert _ids(client, q="job:airflow/prod:orders", type="dataset") == []
    assert _ids(client, q="job:nowhere:orders") == []


def test_like_wildcards_match_only_themselves(client: TestClient) -> None:
    assert _ids(client, q="a_b") == ["dataset:file://db1:/srv/a_b.csv"]
    assert _ids(client, q="%") == ["dataset:file://db1:/srv/100%.csv"]
    assert _ids(client, q="\\") == []
    assert _ids(client, q="<img") == [f"job:cron/db1:{HOSTILE}"]


REFUSED: list[dict[str, Any]] = [
    {"q": "x" * (SEARCH_TEXT_MAX + 1)},
    {"q": "orders\x00"}, {"q": "a\nb"}, {"q": "\x7f"},
    {"limit": 0}, {"limit": SEARCH_MAX + 1}, {"limit": -1}, {"limit": "ten"},
    {"type": "JOBS"}, {"type": "run"}, {"system": ""}, {"system": "s" * 201},
    {"system": "airflow/prod\x00"},
]
HARMLESS = ["' OR 1=1 --", "\"; DROP TABLE lineage_jobs; --", "job:", "dataset::", "job:::",
            "dataset:" + ":" * 150, "%%%%_____", "\u202eevil", "\U0001f600" * 50,
            "job:" + "a:" * 498]


def test_hostile_parameters_are_refused_and_hostile_text_matches_nothing(
        client: TestClient) -> None:
    for params in REFUSED:
        resp = client.get(NODES, params=params)
        assert resp.status_code == 422, (params, resp.text)
    for text in HARMLESS:
        assert _ids(client, q=text) == [], text
    assert len(_ids(client, q="orders")) == 5  # the tables are still there


def test_searching_needs_lineage_read(client: TestClient) -> None:
    assert client.get(NODES, headers=bearer(Role.PRODUCER)).status_code == 403
    assert client.get(NODES, headers={"Authorization": "Bearer nope"}).status_code == 401
