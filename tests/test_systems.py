"""The systems file: registered systems, secret references, located errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.config.systems import SecretError, UnknownSystem, load_systems, parse_systems
from interlock.errors import SpecError

GOOD = """\
systems:
  airflow/prod:
    url: https://airflow.example.com/
    auth: {username: interlock, password: {env: AF_PROD_PASSWORD}}
    events_secret: {file: SECRET_FILE}
  dagster/analytics:
    url: http://dagster.internal:3000
    headers: {Authorization: {env: DAGSTER_TOKEN}, X-Team: data}
"""


def test_a_good_file_registers_each_system_by_kind(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret-s3cret-s3cret\n")
    systems = parse_systems(GOOD.replace("SECRET_FILE", str(secret)), "systems.yaml")
    prod = systems.get("airflow/prod", kind="airflow")
    assert (prod.kind, prod.base_url) == ("airflow", "https://airflow.example.com")
    assert prod.events_secret is not None
    assert prod.events_secret.resolve(system=prod.name) == "s3cret-s3cret-s3cret"
    monkeypatch.setenv("AF_PROD_PASSWORD", "pw")
    assert prod.auth is not None and prod.auth.password.resolve(system=prod.name) == "pw"
    monkeypatch.setenv("DAGSTER_TOKEN", "Bearer t")
    assert systems.get("dagster/analytics").header_values() == {
        "Authorization": "Bearer t", "X-Team": "data"}
    assert [s.name for s in systems.of_kind("dagster")] == ["dagster/analytics"]


def test_unknown_or_wrong_kind_systems_are_named(tmp_path: Path) -> None:
    systems = parse_systems(GOOD.replace("SECRET_FILE", "/nope"), "systems.yaml")
    with pytest.raises(UnknownSystem, match=r"'airflow/qa'.*registered: airflow/prod, dagster/"):
        systems.get("airflow/qa")
    with pytest.raises(UnknownSystem, match="is a dagster system, not airflow"):
        systems.get("dagster/analytics", kind="airflow")


def test_missing_secrets_say_where_to_put_them(monkeypatch: pytest.MonkeyPatch) -> None:
    prod = parse_systems(GOOD.replace("SECRET_FILE", "/no/such/file"), "s.yaml").get(
        "airflow/prod")
    monkeypatch.delenv("AF_PROD_PASSWORD", raising=False)
    assert prod.auth is not None and prod.events_secret is not None
    with pytest.raises(SecretError, match="AF_PROD_PASSWORD is not set"):
        prod.auth.password.resolve(system=prod.name)
    with pytest.raises(SecretError, match="cannot read secret file /no/such/file"):
        prod.events_secret.resolve(system=prod.name)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("systems:\n  airflow/prod:\n    url: ftp://x\n", (3, 5), "url"),
    ("systems:\n  prod:\n    url: http://x\n", (2, 3), "names are <kind>/<name>"),
    ("systems:\n  airflow/p:\n    url: http://x\n    auth: {username: u, password: hunter2}\n",
     (4, 35), "never write the secret itself"),
    ("systems:\n  airflow/p:\n    url: http://x\n    colour: red\n", (4, 5), "colour"),
    ("systems: [1, 2]\n", (1, 1), "a `systems:` mapping"),
    ("systems:\n  airflow/p: {url: http://x\n", (3, 1), ""),
])
def test_bad_files_get_located_problems(text: str, where: tuple[int, int], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_systems(text, "systems.yaml")
    first = caught.value.problems[0]
    assert (first.file, first.line) == ("systems.yaml", where[0])
    assert message in first.message


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "systems.yaml"
    assert len(load_systems(path)) == 0  # no file: nothing registered
    path.write_text("systems:\n  airflow/a: {url: 'http://a'}\n")
    assert "airflow/a" in load_systems(path)
    path.write_text("systems:\n  airflow/b: {url: 'http://b'}\n")
    import os
    os.utime(path, (1, 1))  # a different mtime even within the clock's resolution
    assert "airflow/b" in load_systems(path) and "airflow/a" not in load_systems(path)


def test_only_kinds_whose_adapter_says_so_need_a_url() -> None:
    """`Adapter.system_has_url`, installed by the adapter registry: cron hosts push to
    Interlock and have no `url`; an Airflow system without one is refused with its line."""
    import interlock.adapters.registry  # noqa: F401  (installs the rule)
    hosts = parse_systems("systems:\n  cron/db1: {events_secret: {env: S}}\n", "s.yaml")
    assert hosts.get("cron/db1").url == ""
    with pytest.raises(SpecError) as caught:
        parse_systems("systems:\n  airflow/p: {timeout: 5}\n", "s.yaml")
    first = caught.value.problems[0]
    assert first.line == 2 and "`url` is required for a airflow system" in first.message
