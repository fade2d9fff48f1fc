"""`with:` of an airflow node."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LogScope(StrEnum):
    FAILED = "failed"  # the failed tasks' logs (the default: what an operator reads first)
    ALL = "all"        # every task's log


class AirflowParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(description="a registered Airflow system, e.g. airflow/prod")
    dag_id: str = Field(min_length=1, max_length=250)
    conf: dict[str, Any] = Field(default_factory=dict, description="the DAG run's conf")
    outputs_from: list[str] = Field(
        default_factory=list, description="task ids whose XCom return_value become outputs")
    unpause: bool = Field(default=False, description="unpause the DAG before triggering it")
    logs: LogScope = LogScope.FAILED
