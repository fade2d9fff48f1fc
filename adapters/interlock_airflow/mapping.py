"""Airflow's states through `airflow.yaml`: the user's copy in the mappings folder
(INTERLOCK_MAPPINGS) if there is one, else the default shipped in `interlock_airflow/mappings/`
(read through the SDK's file cache, so again when it changes; checked complete)."""

from __future__ import annotations

from pathlib import Path

from interlock.adapters import NodeState, StatusMapping, mapping_file

DAG_RUN_STATES = ("queued", "running", "success", "failed")
TASK_STATES = ("none", "scheduled", "queued", "running", "restarting", "deferred",
               "up_for_retry", "up_for_reschedule", "awaiting_input", "success", "failed",
               "upstream_failed", "skipped", "removed")


def _file() -> Path:
    return mapping_file("airflow.yaml", "interlock_airflow")


def dag_runs() -> StatusMapping:
    return StatusMapping.load(_file(), required=DAG_RUN_STATES)


def tasks() -> StatusMapping:
    return StatusMapping.load(_file(), required=TASK_STATES, section="task_statuses")


def dag_run_state(status: str) -> NodeState:
    return dag_runs().state_of(status)


def task_state(status: str | None) -> NodeState:
    return tasks().state_of(status or "none")
