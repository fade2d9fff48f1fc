"""Webhook triggers through the API: payload -> typed inputs, 422 naming the field,
idempotent deliveries, unknown keys."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.api.main import create_app
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord

API = "/api/v1"
FLOW = dedent("""
    id: onboard
    namespace: tests.hooks
    inputs:
      customer_id: {type: string, required: true}
      score: {type: number, default: 0.5}
    triggers:
      - webhook: {key: new-customer}
    nodes:
      greet: {uses: noop, with: {who: "{{ inputs.customer_id }}", s: "{{ inputs.score }}"}}
""").lstrip()
HOOK = f"{API}/webhooks/tests.hooks/onboard/new-customer"


@pytest.fixture
def client(embedded: Any) -> Iterator[TestClient]:
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        assert c.post(f"{API}/flows", json={"source": FLOW}).status_code == 201
        yield c


def test_the_payload_becomes_the_runs_inputs(client: TestClient) -> None:
    resp = client.post(HOOK, json={"customer_id": "c-9", "score": 0.9})
    assert resp.status_code == 201, resp.text
    run = resp.json()
    assert run["inputs"] == {"customer_id": "c-9", "score": 0.9}
    assert run["trigger"]["type"] == "webhook" and run["trigger"]["key"] == "new-customer"
    detail = wait_run(run["id"])
    assert detail.state.value == "succeeded"
    assert detail.nodes[0].outputs == {"who": "c-9", "s": 0.9}
    with session_scope() as session:
        fired = session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_FIRED.value)).all()
    assert [r.after["run_id"] for r in fired if r.after] == [run["id"]]


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "customer_id"),
    ({"customer_id": 42}, "customer_id"),
    ({"customer_id": "c", "score": "high"}, "score"),
    ({"customer_id": "c", "colour": "red"}, "colour"),
])
def test_a_payload_that_does_not_match_the_inputs_is_422_naming_the_field(
        client: TestClient, payload: dict[str, Any], field: str) -> None:
    resp = client.post(HOOK, json=payload)
    assert resp.status_code == 422
    assert field in [p["input"] for p in resp.json()["problems"]]
    assert client.get(f"{API}/runs").json()["runs"] == []


def test_a_repeated_idempotency_key_returns_the_first_run(client: TestClient) -> None:
    first = client.post(HOOK, json={"customer_id": "c-1"}, headers={"Idempotency-Key": "evt-1"})
    again = client.post(HOOK, json={"customer_id": "c-1"}, headers={"Idempotency-Key": "evt-1"})
    other = client.post(HOOK, json={"customer_id": "c-2"}, headers={"Idempotency-Key": "evt-2"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]
    assert len(client.get(f"{API}/runs").json()["runs"]) == 2


@pytest.mark.parametrize("path", [
    f"{API}/webhooks/tests.hooks/onboard/wrong-key",
    f"{API}/webhooks/tests.hooks/nope/new-customer",
])
def test_unknown_flows_and_keys_are_404(client: TestClient, path: str) -> None:
    resp = client.post(path, json={"customer_id": "c"})
    assert resp.status_code == 404


def test_a_body_that_is_not_an_object_is_422(client: TestClient) -> None:
    assert client.post(HOOK, json=["c-1"]).status_code == 422
