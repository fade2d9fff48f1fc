"""Dagster's run statuses through `dagster.yaml`: the user's copy in the mappings folder
(INTERLOCK_MAPPINGS) if there is one, else the default in `interlock_dagster/mappings/`."""

from __future__ import annotations

from pathlib import Path

from interlock.adapters import NodeState, StatusMapping, mapping_file

RUN_STATUSES = ("QUEUED", "NOT_STARTED", "MANAGED", "STARTING", "STARTED", "SUSPENDED",
                "SUCCESS", "FAILURE", "CANCELING", "CANCELED")


def _file() -> Path:
    return mapping_file("dagster.yaml", "interlock_dagster")


def runs() -> StatusMapping:
    return StatusMapping.load(_file(), required=RUN_STATUSES)


def run_state(status: str) -> NodeState:
    return runs().state_of(status)
