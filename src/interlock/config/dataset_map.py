"""Datasets made in one system and known as assets in others (`mappings/datasets.yaml`).

    datasets:
      - namespace: postgres://risk
        name: public.sanctions_hits
        assets:
          - {system: dagster/analytics, key: risk/sanctions_hits}
          - {system: airflow/prod, key: "postgres://risk/public.sanctions_hits"}

Read both ways: the assets a dataset is known as (to report a node's `produces:` to each
system), and the dataset a system's asset is (to take in that system's asset events). An
asset's `key` is the system's own name for it: a Dagster asset key (`a/b`), an Airflow
asset's URI or name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from interlock.config import files
from interlock.config.env import current
from interlock.config.mappings import mappings_dir
from interlock.errors import InterlockError


class DatasetMappingError(InterlockError):
    pass


class _Asset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str
    key: str


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str
    name: str
    assets: list[_Asset]


@dataclass(frozen=True)
class Target:
    """One asset of one system that a dataset is known as."""

    system: str
    key: str


@dataclass(frozen=True)
class DatasetRef:
    """A dataset as lineage names it."""

    namespace: str
    name: str

    @property
    def ref(self) -> str:
        return dataset_ref(self.namespace, self.name)


def dataset_ref(namespace: str, name: str) -> str:
    """How an `after: {dataset: ...}` trigger names a dataset: `<namespace>/<name>`, or
    `<namespace><name>` when the name is a path (`file://db1` + `/exports/orders.csv` is
    `file://db1/exports/orders.csv`, as the URL it is)."""
    return f"{namespace}{name}" if name.startswith("/") else f"{namespace}/{name}"


def _entries(path: Path) -> list[_Entry]:
    """The mapping's entries, read again only when the file changes; none without a file."""
    try:
        return files.cached_file(path, _parse_entries)
    except FileNotFoundError:
        return []


def _parse_entries(path: Path) -> list[_Entry]:
    try:
        doc = files.read_yaml(path) or {}
        return [_Entry.model_validate(e) for e in doc.get("datasets", [])]
    except (yaml.YAMLError, ValidationError, AttributeError) as exc:
        raise DatasetMappingError(f"{path}: {exc}") from exc


def mapping_path() -> Path:
    return current().datasets_file or mappings_dir() / "datasets.yaml"


def targets_of(datasets: list[DatasetRef]) -> list[Target]:
    """Every asset the given datasets are known as."""
    if not datasets:  # most nodes: no file to look at on the hot path
        return []
    wanted = {(d.namespace, d.name) for d in datasets}
    return [Target(a.system, a.key) for e in _entries(mapping_path())
            if (e.namespace, e.name) in wanted for a in e.assets]


def dataset_of(system: str, key: str) -> DatasetRef | None:
    """The dataset that ``system`` knows as ``key``, if it is mapped."""
    for entry in _entries(mapping_path()):
        if any(a.system == system and a.key == key for a in entry.assets):
            return DatasetRef(entry.namespace, entry.name)
    return None


def keys_of(system: str) -> list[str]:
    """The asset keys of ``system`` that are mapped: what its watcher looks at."""
    return sorted({a.key for e in _entries(mapping_path()) for a in e.assets
                   if a.system == system})


def mapped_systems() -> set[str]:
    return {a.system for e in _entries(mapping_path()) for a in e.assets}
