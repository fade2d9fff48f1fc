"""The API with OIDC on: JWTs from a real oidc-provider (Node, loopback) are accepted, their
groups bound to roles by the bindings file, and refused when they should be."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest
from oidc_harness import AUDIENCE, OTHER_AUDIENCE, OidcProvider

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from helpers import bearer

from interlock.api.main import create_app
from interlock.api.security import UNAUTHENTICATED
from interlock.config.env import settings
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord

API = "/api/v1"
FLOW = dedent("""
    id: pay
    namespace: finance.eu
    nodes:
      send: {uses: noop}
""").lstrip()
BINDINGS = dedent("""
    groups:
      finance-ops: [{role: operator, namespace: "finance.*"}]
      auditors:    [{role: auditor, namespace: "*"}]
""").lstrip()


@pytest.fixture
def client(oidc_provider: OidcProvider, embedded: object, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    (tmp_path / "bindings.yaml").write_text(BINDINGS)
    monkeypatch.setenv("INTERLOCK_OIDC_ISSUER", oidc_provider.issuer)
    monkeypatch.setenv("INTERLOCK_OIDC_AUDIENCE", AUDIENCE)
    monkeypatch.setenv("INTERLOCK_OIDC_BINDINGS", str(tmp_path / "bindings.yaml"))
    settings.cache_clear()
    with TestClient(create_app(dispatcher=embedded)) as c:  # type: ignore[arg-type]
        assert c.post(f"{API}/flows", json={"source": FLOW},
                      headers=bearer(name="setup")).status_code == 201
        yield c
    settings.cache_clear()


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_group_bound_on_a_namespace_acts_there_and_is_recorded_by_subject(
        client: TestClient, oidc_provider: OidcProvider) -> None:
    ops = _as(oidc_provider.token(groups=("finance-ops",)))
    started = client.post(f"{API}/runs", json={"namespace": "finance.eu", "flow_id": "pay"},
                          headers=ops)
    assert started.status_code == 201, started.text
    assert client.get(f"{API}/runs/{started.json()['id']}", headers=ops).status_code == 200
    assert client.get(f"{API}/audit", headers=ops).status_code == 403  # global: needs `*`
    with session_scope() as session:
        created = session.query(AuditRecord).filter_by(action="run.created").one()
    assert created.actor.startswith("oidc:")


def test_a_group_without_bindings_sees_nothing(client: TestClient,
                                               oidc_provider: OidcProvider) -> None:
    stranger = _as(oidc_provider.token(groups=("marketing",)))
    assert client.get(f"{API}/runs", headers=stranger).status_code == 403
    resp = client.post(f"{API}/runs", json={"namespace": "finance.eu", "flow_id": "pay"},
                       headers=stranger)
    assert resp.status_code == 403


def test_an_auditor_group_reads_the_trail(client: TestClient,
                                          oidc_provider: OidcProvider) -> None:
    auditor = _as(oidc_provider.token(groups=("auditors",)))
    assert client.get(f"{API}/audit/verify", headers=auditor).json()["ok"] is True


def test_a_token_for_another_audience_gets_the_one_sentence(
        client: TestClient, oidc_provider: OidcProvider) -> None:
    wrong = _as(oidc_provider.token(audience=OTHER_AUDIENCE, groups=("finance-ops",)))
    resp = client.get(f"{API}/runs", headers=wrong)
    assert resp.status_code == 401 and resp.json() == {"detail": UNAUTHENTICATED}
    assert resp.headers["www-authenticate"] == "Bearer"


def test_after_a_key_rotation_new_tokens_are_accepted(client: TestClient,
                                                      oidc_provider: OidcProvider) -> None:
    before = oidc_provider.token(groups=("finance-ops",))
    assert client.get(f"{API}/runs", headers=_as(before)).status_code == 200
    oidc_provider.rotate(keep_old=False)
    after = oidc_provider.token(groups=("finance-ops",))
    # The old key is gone from the JWKS: a token it signed is refused once the JWKS is
    # fetched again; the new key's token is accepted (an unknown kid refetches, rate-limited).
    import time
    time.sleep(10.5)  # past the refetch interval, which the previous tests may have used
    assert client.get(f"{API}/runs", headers=_as(after)).status_code == 200
    assert client.get(f"{API}/runs", headers=_as(before)).status_code == 401
