"""Which system a job belongs to, read from an OpenLineage event.

In order: the `interlock` namespace is Interlock's own; a namespace that is already a
system name (`airflow/prod`, `dagster/main`, `cron/db1`: its prefix is an installed
adapter's kind, or another producer's, such as `spark`) is that system; otherwise the
integration the producer names (job facet `jobType.integration`, else run facet
`processing_engine.name`) prefixes the namespace: Airflow's provider with namespace `prod`
gives `airflow/prod`. With no signal at all the namespace itself stands for the system.

Give Airflow's provider the system's name as its namespace (`OPENLINEAGE_NAMESPACE=
airflow/prod`) and its jobs meet the ones Interlock records for the same DAGs.
"""

from __future__ import annotations

from typing import Any

from interlock.adapters.openlineage import JOB_NAMESPACE
from interlock.adapters.registry import default_registry

INTERLOCK = JOB_NAMESPACE  # the system of flow and node jobs
# OpenLineage producers that are no adapter of ours but name namespaces `<kind>/<name>`.
OTHER_PRODUCERS = frozenset({"spark", "dbt", "flink"})


def system_kinds() -> frozenset[str]:
    """Namespace prefixes that make a namespace a system name."""
    return default_registry().kinds | OTHER_PRODUCERS | {INTERLOCK}


def system_of(namespace: str, job_facets: dict[str, Any] | None = None,
              run_facets: dict[str, Any] | None = None) -> str | None:
    """The job's system, or None when the event gives no signal (then: the namespace)."""
    if namespace == INTERLOCK:
        return INTERLOCK
    kind, sep, _ = namespace.partition("/")
    if sep and kind in system_kinds():
        return namespace
    integration = _text((job_facets or {}).get("jobType"), "integration") \
        or _text((run_facets or {}).get("processing_engine"), "name")
    if integration:
        return f"{integration.lower()}/{namespace}"
    return None


def _text(facet: Any, key: str) -> str | None:
    value = facet.get(key) if isinstance(facet, dict) else None
    return value if isinstance(value, str) and value else None
