"""Airflow's states through `mappings/airflow.yaml` (read through the SDK's file cache, so
again when it changes; checked complete)."""

from __future__ import annotations

from interlock.adapters import NodeState, StatusMapping, mappings_dir

DAG_RUN_STATES = ("queued", "running", "success", "failed")
TASK_STATES = ("none", "scheduled", "queued", "running", "restarting", "deferred",
               "up_for_retry", "up_for_reschedule", "awaiting_input", "success", "failed",
               "upstream_failed", "skipped", "removed")


def dag_runs() -> StatusMapping:
    return StatusMapping.load(mappings_dir() / "airflow.yaml", required=DAG_RUN_STATES)


def tasks() -> StatusMapping:
    return StatusMapping.load(mappings_dir() / "airflow.yaml", required=TASK_STATES,
                              section="task_statuses")


def dag_run_state(status: str) -> NodeState:
    return dag_runs().state_of(status)


def task_state(status: str | None) -> NodeState:
    return tasks().state_of(status or "none")
