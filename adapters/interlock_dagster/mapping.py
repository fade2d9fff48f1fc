"""Dagster's run statuses through `mappings/dagster.yaml`."""

from __future__ import annotations

from interlock.adapters import NodeState, StatusMapping, mappings_dir

RUN_STATUSES = ("QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUSPENDED",
                "SUCCESS", "FAILURE", "CANCELING", "CANCELED")


def runs() -> StatusMapping:
    return StatusMapping.load(mappings_dir() / "dagster.yaml", required=RUN_STATUSES)


def run_state(status: str) -> NodeState:
    return runs().state_of(status)
