"""The project's promises about its own files: entry points, schema, compose file."""

from __future__ import annotations

import importlib
import json
import re
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest
import yaml

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
            "rpa": "interlock_rpa:RpaAdapter"}


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
