"""`interlock import <kind> --system NAME`: what a system offers, as an editable mapping file.

The adapter discovers the jobs (DAGs, Dagster jobs and assets...); this writes them, with
a ready-to-paste flow node for each, to `mappings/<kind>-<name>.yaml`. Architects edit the
file; importing again rewrites it, so keep hand edits in flows, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from interlock import clock
from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.config.mappings import mappings_dir
from interlock.config.systems import load_systems
from interlock.lineage.observed import record_discovered
from interlock.store.db import session_scope


def discover(system: str, *, registry: AdapterRegistry | None = None) -> dict[str, Any]:
    """The mapping document of ``system`` (raises UnknownSystem, Transient, Rejected)."""
    registered = load_systems().get(system)
    adapter = (registry or default_registry()).get(registered.kind)
    jobs = [j for j in adapter.discover() if j.system == system]
    return {
        "system": system,
        "kind": registered.kind,
        "imported_at": clock.now().isoformat(timespec="seconds"),
        "jobs": {j.job_id: {"description": j.description, **j.extra}
                 for j in sorted(jobs, key=lambda j: j.job_id)},
    }


def default_path(system: str) -> Path:
    return mappings_dir() / f"{system.replace('/', '-')}.yaml"


def write(document: dict[str, Any], path: Path) -> Path:
    header = (f"# Written by `interlock import {document['kind']} --system "
              f"{document['system']}`.\n# Each job lists its tasks, schedule and datasets, "
              "and a `node:` to paste into a flow.\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(document, sort_keys=False, allow_unicode=True,
                                            width=100), encoding="utf-8")
    return path


def record_lineage(document: dict[str, Any]) -> int:
    """The datasets the discovered jobs read and write, as `observed` lineage edges."""
    with session_scope() as session:
        return record_discovered(session, document)
