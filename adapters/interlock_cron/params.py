"""The `with:` of a `uses: cron` node."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RunNow(StrEnum):
    NOW = "now"


class WaitFor(StrEnum):
    NEXT = "next"


class CronParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system: str = Field(pattern=r"^cron/[A-Za-z0-9][A-Za-z0-9_.-]*$",
                        description="the host's system, e.g. cron/db1")
    job: str = Field(description="the job id in mappings/cron-<host>.yaml")
    run: RunNow | None = Field(default=None, description=(
        "`now`: run the job's command on a worker now (as crond would)"))
    wait: WaitFor | None = Field(default=None, description=(
        "`next`: wait for the next run of the job that crond starts and "
        "`interlock cron exec` reports"))

    @model_validator(mode="after")
    def _one_mode(self) -> CronParams:
        if (self.run is None) == (self.wait is None):
            raise ValueError("give exactly one of `run: now` or `wait: next`")
        return self
