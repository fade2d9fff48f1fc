"""`with:` of a dagster node: a job, or a selection of assets to materialize."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DagsterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(description="a registered Dagster system, e.g. dagster/analytics")
    job: str | None = Field(default=None, description="the job to launch")
    assets: list[str] = Field(default_factory=list,
                              description="asset keys to materialize, `/`-separated")
    run_config: dict[str, Any] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    op_selection: list[str] = Field(default_factory=list)
    location: str | None = Field(default=None, description="code location; default: found")
    repository: str | None = None

    @model_validator(mode="after")
    def _job_or_assets(self) -> DagsterParams:
        if (self.job is None) == (not self.assets):
            raise ValueError("give exactly one of `job` or `assets`")
        return self

    def asset_paths(self) -> list[list[str]]:
        return [key.split("/") for key in self.assets]
