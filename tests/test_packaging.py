"""The project's promises about its own files: entry points, schema, compose file, and the
package data a non-editable install needs (the adapters' default status mappings)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import yaml

from interlock.adapters import mapping_file
from interlock.adapters.contract import Adapter
from interlock.adapters.registry import ENTRY_POINT_GROUP
from interlock.spec.schema import flow_schema_text
from tests.conftest import ROOT

# compose_spec.json is the Compose Specification's JSON Schema (Apache-2.0), as shipped
# inside the docker-compose 1.29.2 wheel on PyPI; refresh it from there.
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose_spec.json"


ADAPTERS = {"script": "interlock_script:ScriptAdapter", "noop": "interlock_noop:NoopAdapter",
            "airflow": "interlock_airflow:AirflowAdapter",
            "dagster": "interlock_dagster:DagsterAdapter", "cron": "interlock_cron:CronAdapter",
            "rpa": "interlock_rpa:RpaAdapter", "agent": "interlock_agent:AgentAdapter"}


def test_adapters_are_found_through_the_entry_point_group() -> None:
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert found == ADAPTERS


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_each_adapter_loads_with_its_kind_from_a_documented_package(kind: str) -> None:
    (entry,) = entry_points(group=ENTRY_POINT_GROUP, name=kind)
    adapter = entry.load()
    assert issubclass(adapter, Adapter) and adapter.kind == kind
    package = importlib.import_module(entry.module)
    assert package.__file__ and Path(package.__file__).parent == ROOT / "adapters" / entry.module
    assert (package.__doc__ or "").strip(), f"{entry.module} says nothing about itself"


def test_core_never_imports_a_concrete_adapter() -> None:
    # Whole names: the metric `interlock_cron_checks` is not the package `interlock_cron`.
    names = "|".join(value.split(":")[0] for value in ADAPTERS.values())
    packages = re.compile(rf"\b({names})\b")
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "src" / "interlock").rglob("*.py")
                 if packages.search(p.read_text())]
    assert offenders == []


def test_committed_flow_schema_is_current() -> None:
    committed = (ROOT / "schemas" / "flow.schema.json").read_text()
    assert committed == flow_schema_text(), "run: interlock schema -o schemas/flow.schema.json"


def test_example_flows_satisfy_the_json_schema() -> None:
    schema = json.loads(flow_schema_text())
    for path in (ROOT / "examples").rglob("flow.yaml"):
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_docker_compose_file_matches_the_compose_schema() -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    services = compose["services"]
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown service {needed}"


# Each adapter's default status mapping, shipped as package data of the adapter package.
PACKAGED_MAPPINGS = ["interlock_airflow/mappings/airflow.yaml",
                     "interlock_dagster/mappings/dagster.yaml"]


def built_files(tmp_path: Path) -> set[str]:
    """The files a wheel of this project holds: the wheel's own list when `wheel` (or a
    setuptools with bdist_wheel built in) is present, else what `build_py` (which fills
    the wheel's package tree, package data included) lays out. Built from a copy, so the
    checkout gets no build/ or egg-info."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("src", "adapters"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    setuptools_has_wheel = importlib.util.find_spec("setuptools.command.bdist_wheel")
    if importlib.util.find_spec("wheel") or setuptools_has_wheel:
        out = tmp_path / "dist"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "--no-build-isolation", "-q", "-w", str(out), str(source)],
                       check=True, timeout=120)
        (wheel,) = out.glob("interlock-*.whl")
        return set(zipfile.ZipFile(wheel).namelist())
    out = tmp_path / "build"
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q",
                    "build_py", "-d", str(out)], cwd=source, check=True, timeout=120,
                   capture_output=True)
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_the_default_status_mappings_are_package_data(tmp_path: Path) -> None:
    files = built_files(tmp_path)
    assert "interlock_airflow/mapping.py" in files  # the build did lay the adapters out
    assert [name for name in PACKAGED_MAPPINGS if name not in files] == []
    # and each is a file of its adapter package in this checkout (editable installs)
    for name in PACKAGED_MAPPINGS:
        assert (ROOT / "adapters" / name).is_file()


def test_status_mappings_load_from_the_package_with_an_empty_mappings_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock_airflow import mapping as airflow
    from interlock_dagster import mapping as dagster

    monkeypatch.setenv("INTERLOCK_MAPPINGS", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no ./mappings, no checkout to fall back on
    assert airflow.dag_run_state("success").value == "succeeded"
    assert airflow.tasks().state_of("upstream_failed").value == "skipped"
    assert dagster.run_state("FAILURE").value == "failed"
    shipped = Path(importlib.import_module("interlock_airflow").__file__ or "").parent
    assert mapping_file("airflow.yaml", "interlock_airflow") == shipped / "mappings" / \
        "airflow.yaml"


def test_a_mapping_in_the_mappings_folder_overrides_the_packaged_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from interlock_dagster import mapping as dagster

    shipped = yaml.safe_load(mapping_file("dagster.yaml", "interlock_dagster").read_text())
    shipped["statuses"]["FAILURE"] = "cancelled"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(shipped))
    monkeypatch.setenv("INTERLOCK_MAPPINGS", str(tmp_path))
    assert mapping_file("dagster.yaml", "interlock_dagster") == tmp_path / "dagster.yaml"
    assert dagster.run_state("FAILURE").value == "cancelled"
