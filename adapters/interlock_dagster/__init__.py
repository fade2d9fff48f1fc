"""Dagster 1.13 adapter (`uses: dagster`), over Dagster's GraphQL API."""

from interlock_dagster.adapter import DagsterAdapter

__all__ = ["DagsterAdapter"]
