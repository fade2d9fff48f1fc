"""`interlock tokens`, `interlock admin bootstrap` and `interlock serve`'s guard for
INTERLOCK_AUTH=off, on a local store."""

from __future__ import annotations

import json
import stat
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interlock import clock
from interlock.access.permissions import Role
from interlock.access.principals import PrincipalKind, Unauthenticated
from interlock.api.main import create_app
from interlock.cli.main import app
from interlock.cli.serve import is_loopback
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import access as access_ops
from tests.serving import env_for, serving


@pytest.fixture(autouse=True)
def _auth_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLOCK_AUTH", raising=False)
    monkeypatch.delenv("INTERLOCK_TOKEN", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert not isinstance(result.exception, (AssertionError, TypeError, AttributeError)), \
        result.output
    return result


def create(*extra: str, name: str = "ada") -> Any:
    return invoke("tokens", "create", "--name", name, "--role", "operator",
                  "--namespace", "finance.*", *extra)


# --- tokens -------------------------------------------------------------------------------


def test_create_prints_the_token_alone_on_stdout(sqlite_store: str) -> None:
    result = create("--expires", "1h")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    principal = access_ops.authenticate(f"Bearer {token}")
    assert principal.actor == "user:ada" and principal.kind is PrincipalKind.USER
    assert principal.bindings[0].role is Role.OPERATOR
    assert principal.bindings[0].pattern == "finance.*"
    details = " ".join(result.stderr.split())
    assert f"prefix {token[4:12]}" in details and "role operator on finance.*" in details
    assert token not in result.stderr
    (info,) = access_ops.list_tokens()
    assert info.expires_at is not None
    assert abs(info.expires_at - clock.now() - timedelta(hours=1)) < timedelta(minutes=1)


def test_create_json_service_and_never_expiring(sqlite_store: str) -> None:
    result = create("--service", "--expires", "never", "--json", name="etl-bot")
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert made["kind"] == "service" and made["expires_at"] is None
    assert made["token"].startswith(f"ilk_{made['prefix']}_")
    assert set(made) >= {"token", "name", "prefix", "role", "namespace", "created_at",
                         "expires_at", "last_used_at", "revoked_at"}


def test_create_defaults_to_90_days(sqlite_store: str) -> None:
    assert create().exit_code == 0
    (info,) = access_ops.list_tokens()
    assert info.expires_at is not None
    assert abs(info.expires_at - clock.now() - timedelta(days=90)) < timedelta(minutes=1)


@pytest.mark.parametrize(("args", "fragment"), [
    (["--expires", "soon"], "bad duration 'soon'"),
    (["--expires", "0s"], "longer than 0"),
    (["--namespace", "finance eu"], "namespace pattern 'finance eu'"),
    (["--name", "no spaces"], "token name 'no spaces'"),
])
def test_create_refuses_bad_input_with_exit_2(sqlite_store: str, args: list[str],
                                              fragment: str) -> None:
    result = create(*args)
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert access_ops.list_tokens() == []


def test_an_unknown_role_is_refused(sqlite_store: str) -> None:
    result = invoke("tokens", "create", "--name", "x", "--role", "owner", "--namespace", "*")
    assert result.exit_code == 2


def test_list_never_shows_a_token_and_revoke_ends_it(sqlite_store: str) -> None:
    token = create().stdout.strip()
    assert create(name="ada").exit_code == 1  # names are unique
    listed = invoke("tokens", "list")
    assert listed.exit_code == 0
    assert "ada" in listed.stdout and token[4:12] in listed.stdout
    assert token not in listed.stdout and token[13:] not in listed.stdout
    as_json = json.loads(invoke("tokens", "list", "--json").stdout)
    assert [(t["name"], t["role"], t["revoked_at"]) for t in as_json] == [
        ("ada", "operator", None)]
    revoked = invoke("tokens", "revoke", "ada")
    assert revoked.exit_code == 0 and "revoked token ada" in revoked.stdout
    with pytest.raises(Unauthenticated):
        access_ops.authenticate(f"Bearer {token}")
    assert json.loads(invoke("tokens", "list", "--json").stdout)[0]["revoked_at"]
    assert invoke("tokens", "revoke", "nobody").exit_code == 1


# --- admin bootstrap ----------------------------------------------------------------------


def test_bootstrap_writes_an_owner_only_admin_token(sqlite_store: str, tmp_path: Path) -> None:
    result = invoke("admin", "bootstrap")
    assert result.exit_code == 0, result.output
    path = tmp_path / "admin-token"  # $INTERLOCK_HOME/admin-token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text(encoding="utf-8").strip()
    assert str(path) in result.stdout
    assert token not in result.stdout + result.stderr
    assert token[13:] not in result.stdout + result.stderr
    dispatcher = EmbeddedDispatcher()
    try:
        with TestClient(create_app(dispatcher=dispatcher)) as client:
            answer = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    finally:
        dispatcher.close()
    assert answer.status_code == 200  # tokens:admin on every namespace: an admin
    assert [t["name"] for t in answer.json()] == ["admin"]
    again = invoke("admin", "bootstrap")
    assert again.exit_code == 2
    assert "exists" in again.output and token not in again.output
    assert path.read_text(encoding="utf-8").strip() == token  # not overwritten


def test_bootstrap_to_a_chosen_file(sqlite_store: str, tmp_path: Path) -> None:
    target = tmp_path / "keys" / "first-admin"
    target.parent.mkdir()
    result = invoke("admin", "bootstrap", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "admin-token").exists()


# --- serve with INTERLOCK_AUTH=off --------------------------------------------------------


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.4", False),
    ("example.com", False), ("localhost.evil.com", False)])
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1"])
def test_serve_refuses_auth_off_beyond_loopback(sqlite_store: str, host: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock.config.env import settings
    monkeypatch.setenv("INTERLOCK_AUTH", "off")
    settings.cache_clear()
    try:
        result = invoke("serve", "--host", host, "--port", "1")
    finally:
        settings.cache_clear()
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "INTERLOCK_AUTH=off" in message and f"refused on --host {host}" in message


def test_serve_with_auth_off_warns_and_answers_on_loopback(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(env_for(tmp_path, INTERLOCK_AUTH="off"), log) as base:
        assert httpx.get(f"{base}/api/v1/runs").status_code == 200  # anonymous: development
    assert "authentication is OFF: local development only" in log.read_text()
