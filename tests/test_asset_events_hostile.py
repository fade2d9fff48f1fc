"""Asset events pushed with a Dagster run are hostile until proven otherwise: a malformed
list is refused whole (422, audited, nothing recorded), a huge or deep metadata value is
kept as a bounded fact, names never reach a shell or a path, and what Interlock reported
itself is not taken in again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord, DatasetUpdate, ExternalRun
from tests.helpers import bearer

SECRET = "test-secret-" + uuid.uuid4().hex
API = "/api/v1"


@pytest.fixture
def client(embedded: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    (tmp_path / "systems.yaml").write_text(dedent("""
        systems:
          dagster/test: {url: "http://127.0.0.1:9", events_secret: {env: TEST_EVENTS_SECRET}}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
    monkeypatch.setenv("TEST_EVENTS_SECRET", SECRET)
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        yield c


def _asset(**fields: Any) -> dict[str, Any]:
    return {"kind": "materialization", "key": "risk/hits", "timestamp": "1764583200000",
            "partition": None, "metadataEntries": [{"label": "rows", "intValue": 3}], **fields}


def _post(client: TestClient, assets: Any) -> Any:
    payload = {"system": "dagster/test", "kind": "run", "state": "SUCCESS", "job": "hits_job",
               "run_id": uuid.uuid4().hex, "tags": {}, "start_time": 1764583100.0,
               "end_time": 1764583200.0, "assets": assets}
    body = json.dumps(payload).encode()
    return client.post(f"{API}/events/dagster", content=body,
                       headers={"Content-Type": "application/json",
                                **signing.sign(SECRET, body)})


def _updates() -> list[DatasetUpdate]:
    with session_scope() as session:
        return list(session.scalars(select(DatasetUpdate)))


@pytest.mark.parametrize("assets,words", [
    ("not a list", ["assets"]),
    ([_asset()] * 201, ["at most 200"]),
    (["a string"], ["object"]),
    ([_asset(timestamp="1e9")], ["timestamp"]),
    ([_asset(timestamp=17645832)], ["timestamp"]),
    ([_asset(kind="deletion")], ["kind"]),
    ([_asset(key="")], ["key"]),
    ([_asset(key="k" * 501)], ["key"]),
    ([_asset(metadataEntries=[{"no": "label"}])], ["metadataEntries"]),
    ([_asset(partition={"$ne": 1})], ["key"]),
])
def test_a_malformed_asset_list_refuses_the_whole_event(
        client: TestClient, assets: Any, words: list[str]) -> None:
    resp = _post(client, assets)
    assert resp.status_code == 422, resp.text
    assert all(w in resp.json()["detail"] for w in words), resp.json()
    assert _updates() == []
    with session_scope() as session:
        assert session.scalar(select(ExternalRun)) is None  # nothing of the event was kept
        refused = list(session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.EVENT_REFUSED.value)))
    assert len(refused) == 1 and "asset" in refused[0].after["reason"]


def test_huge_or_deep_metadata_is_kept_as_a_bounded_fact(client: TestClient) -> None:
    deep: Any = "bottom"
    for _ in range(200):
        deep = {"d": deep}
    entries = [{"label": "blob", "text": "x" * 1_000_000},
               {"label": "deep", "jsonString": json.dumps(deep)},
               {"label": "$(rm -rf /); ../../etc/passwd", "text": "`reboot`"}]
    resp = _post(client, [_asset(metadataEntries=entries, key="../../etc/passwd")])
    assert resp.status_code in (200, 201, 202), resp.text
    [update] = _updates()
    assert update.dataset == "dagster/test/../../etc/passwd"  # a name, never a path
    stored = json.dumps(update.details)
    assert len(stored) < 40_000 and "x" * 2000 not in stored
    assert "sha256" in stored  # the long and deep parts are facts


def test_what_interlock_reported_itself_is_not_taken_in_again(client: TestClient) -> None:
    echo = _asset(metadataEntries=[{"label": "interlock/attempt", "intValue": 1}])
    assert _post(client, [echo]).status_code in (200, 201, 202)
    assert _updates() == []
