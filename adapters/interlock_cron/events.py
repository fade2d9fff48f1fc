"""What `interlock cron exec` reports, and how it becomes a ForeignEvent.

    {"system": "cron/db1", "job": "backup", "run": "<uuid>", "event": "start" | "finish",
     "host": "db1", "pid": 4242, "user": "root",
     "started_at": "...", "ended_at": "...",            # ISO 8601, UTC
     "exit_code": 0, "signal": null, "duration_s": 12.5, "output_tail": "..."}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from interlock.adapters import ForeignEvent, NodeState, Rejected

OUTPUT_TAIL_CHARS = 4000
RUN_TYPE = "cron"


class Phase(StrEnum):
    START = "start"
    FINISH = "finish"


class CronReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    system: str
    job: str = Field(min_length=1, max_length=250)
    run: str = Field(min_length=1, max_length=250)
    event: Phase
    host: str | None = None
    pid: int | None = None
    user: str | None = None
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    duration_s: float | None = None
    output_tail: str = Field(default="", max_length=OUTPUT_TAIL_CHARS * 4)

    def status(self) -> tuple[str, NodeState]:
        """The report's own word and Interlock's state."""
        if self.event is Phase.START:
            return "running", NodeState.RUNNING
        if self.signal is not None:
            return f"signal {self.signal}", NodeState.FAILED
        if self.exit_code == 0:
            return "exited 0", NodeState.SUCCEEDED
        return f"exited {self.exit_code}", NodeState.FAILED


def parse_report(payload: dict[str, Any]) -> ForeignEvent:
    try:
        report = CronReport.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Rejected(f"cron report: `{where}`: {first['msg']}") from None
    if report.event is Phase.FINISH and report.exit_code is None and report.signal is None:
        raise Rejected("cron report: a finish needs `exit_code` or `signal`")
    remote_status, state = report.status()
    details: dict[str, Any] = {"host": report.host, "pid": report.pid, "user": report.user}
    if report.event is Phase.FINISH:
        details |= {"exit_code": report.exit_code, "signal": report.signal,
                    "duration_s": report.duration_s,
                    "output_tail": report.output_tail[-OUTPUT_TAIL_CHARS:]}
    return ForeignEvent(system=report.system, job_id=report.job, external_id=report.run,
                        remote_status=remote_status, state=state, run_type=RUN_TYPE,
                        started_at=report.started_at, ended_at=report.ended_at,
                        details=details)
