"""Datasets made in one system and known as assets in another (`mappings/datasets.yaml`).

    datasets:
      - namespace: postgres://risk
        name: public.sanctions_hits
        assets:
          - {system: dagster/analytics, key: risk/sanctions_hits}

When a node succeeds, each dataset it `produces:` that is mapped here is reported to the
mapped systems (a runless materialization in Dagster), so their asset graphs and sensors
see data made elsewhere. A node is never reported to the system that ran it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session

from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.config import files
from interlock.config.env import current
from interlock.config.mappings import mappings_dir
from interlock.config.systems import load_systems
from interlock.errors import InterlockError, Rejected, Transient
from interlock.spec.models import Dataset
from interlock.store import outbox
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.outbox import Dispatcher
from interlock.store.tables import Attempt, Run, TaskKind

log = logging.getLogger(__name__)


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
    system: str
    key: str


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


def targets_of(datasets: list[Dataset]) -> list[Target]:
    if not datasets:  # most nodes: no file to look at on the hot path
        return []
    entries = _entries(mapping_path())
    wanted = {(d.namespace, d.name) for d in datasets}
    return [Target(a.system, a.key) for e in entries if (e.namespace, e.name) in wanted
            for a in e.assets]


def report(attempt_id: int, *, registry: AdapterRegistry | None = None) -> None:
    """The REPORT work of a succeeded attempt; a Transient error leaves the outbox row, so
    the report is sent again after the lease (at least once)."""
    registry = registry or default_registry()
    with session_scope() as session:
        attempt = session.get(Attempt, attempt_id)
        if attempt is None:
            return
        run = session.get(Run, attempt.run_id)
        assert run is not None
        node = flow_of_run(session, run).nodes[attempt.node_id]
        metadata = {"interlock/run_id": run.id, "interlock/node_id": attempt.node_id,
                    "interlock/attempt": attempt.number, "interlock/trace_id": run.trace_id,
                    "interlock/flow": f"{run.namespace}/{run.flow_id}"}
        run_id, uses = run.id, attempt.uses
    systems = load_systems()
    for target in targets_of(node.produces):
        kind = systems.get(target.system).kind if target.system in systems else None
        if kind is None or kind == uses:
            continue
        try:
            registry.get(kind).report_materialization(target.system, target.key,
                                                      metadata=metadata)
        except Transient:
            raise
        except (Rejected, InterlockError) as exc:
            log.warning("reporting %s to %s failed, not retried: %s", target.key,
                        target.system, exc)
    with session_scope() as session:
        outbox.complete(session, kind=TaskKind.REPORT, run_id=run_id, attempt_id=attempt_id)


def schedule(session: Session, attempt: Attempt, produces: list[Dataset]) -> bool:
    """Add the REPORT work of ``attempt`` when something it produced is mapped."""
    if not targets_of(produces):
        return False
    outbox.add(session, outbox.Work(TaskKind.REPORT, attempt.run_id, attempt.id))
    return True


def send(dispatcher: Dispatcher, attempt: Attempt) -> None:
    dispatcher.send(outbox.Work(TaskKind.REPORT, attempt.run_id, attempt.id))
