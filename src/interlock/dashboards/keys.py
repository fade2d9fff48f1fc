"""Which system an attempt touches, as one SQL expression (no schema change needed).

The handle's `system` (set by adapters that talk to a registered system, e.g. airflow/prod),
else the node's `with: system` (an attempt refused before it got a handle still names the
system it was aimed at), else the adapter kind (`script`, `noop`...). The JSON fields are
read through SQLAlchemy's JSON index operators: `->>` on PostgreSQL, `json_extract` on SQLite.
No index covers this expression: see docs/dashboards.md for the cost.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func

from interlock.store.tables import Attempt


def attempt_system() -> ColumnElement[str]:
    return func.coalesce(Attempt.handle["system"].as_string(),
                         Attempt.params["system"].as_string(), Attempt.uses)


def kind_of(system: str) -> str:
    """The adapter kind of a system key: `airflow` for airflow/prod, `script` for script."""
    return system.split("/", 1)[0]
