"""`uses: cron`: a node that is a legacy cron job, which crond may still schedule.

- `run: now` runs the job's command from `mappings/cron-<host>.yaml` on a worker, in the
  script adapter's supervised runner (timeout, cancel, logs, survives the worker), with
  the job's crontab environment and its `%` stdin, as crond would.
- `wait: next` waits for the next run crond starts and `interlock cron exec` reports, so
  downstream nodes can depend on a job nobody has migrated. The node succeeds or fails
  with that run; if the run is MISSED (see `interlock.cron.checks`) the node fails.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from interlock_script.adapter import ScriptAdapter
from interlock_script.params import ScriptParams
from pydantic import BaseModel, ValidationError

from interlock.adapters import (
    NODE_TERMINAL,
    CronJob,
    CronJobsError,
    ForeignEvent,
    Handle,
    JobSpec,
    LogChunk,
    NodeState,
    Observation,
    ObservedRun,
    Rejected,
    UnknownCronJob,
    clock,
    get_job,
    observed,
    paths,
)
from interlock_cron.events import parse_report
from interlock_cron.params import CronParams

KIND = "cron"
WAIT = "wait"
DEFAULT_SHELL = "/bin/sh"
STDIN_END = "__INTERLOCK_CRON_STDIN__"
HOME_FIX = f"add that folder to {paths.WORK_ROOTS_SETTING} on the workers, or change HOME"
CRON_ONLY_ENV = frozenset({"MAILTO", "CRON_TZ", "MAILFROM", "CONTENT_TYPE"})


class CronAdapter(ScriptAdapter):
    kind: ClassVar[str] = KIND
    params_model: ClassVar[type[BaseModel]] = CronParams
    poll_interval: ClassVar[tuple[float, float]] = (0.2, 2.0)
    system_has_url: ClassVar[bool] = False  # cron/<host> pushes reports; nothing to call

    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        params = _params(job.params)
        cron_job = _job(params)
        if params.wait is not None:
            return Handle(kind=KIND, external_id=key, system=params.system,
                          data={"mode": WAIT, "job": cron_job.id,
                                "since": clock.now().isoformat()})
        script = dataclasses.replace(job, params=_script_params(cron_job))
        return super().submit(script, key=key)

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        waiting = [h for h in handles if h.data.get("mode") == WAIT]
        running = [h for h in handles if h.data.get("mode") != WAIT]
        return super().poll(running) + _observe_waits(waiting)

    def cancel(self, handle: Handle) -> None:
        if handle.data.get("mode") != WAIT:
            super().cancel(handle)
        # A waited-for run belongs to crond: cancelling the node stops waiting, not the job.

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        if handle.data.get("mode") != WAIT:
            return super().logs(handle, cursor=cursor)
        run = _first_run_since(handle)
        tail = run.details.get("output_tail") if run else None
        return LogChunk(text=tail or "(no run of the job reported yet)\n")

    def parse_event(self, payload: dict[str, Any]) -> ForeignEvent:
        return parse_report(payload)


def _params(raw: dict[str, Any]) -> CronParams:
    try:
        return CronParams.model_validate(raw)
    except ValidationError as exc:
        raise Rejected(f"invalid `with:` for uses: cron: {exc}") from None


def _job(params: CronParams) -> CronJob:
    try:
        return get_job(params.system, params.job)
    except (UnknownCronJob, CronJobsError) as exc:
        raise Rejected(str(exc)) from None


def _script_params(job: CronJob) -> dict[str, Any]:
    """The job's command as crond runs it: by its SHELL, with its environment and stdin."""
    env = {k: v for k, v in job.env.items() if k not in CRON_ONLY_ENV}
    body = job.command
    if job.stdin is not None:
        body = f"{body} <<'{STDIN_END}'\n{job.stdin}\n{STDIN_END}"
    home = env.get("HOME")
    if home:  # crond runs a job in its HOME: that too must be inside a work root
        paths.inside(paths.work_roots(), home, f"HOME of cron job `{job.id}` ({job.source})",
                     strict=False, fix=HOME_FIX)
    params = ScriptParams(script=body + "\n", interpreter=shlex.quote(
        env.pop("SHELL", DEFAULT_SHELL)), env=env, inherit_env=["HOME", "LOGNAME", "USER"],
        cwd=home)
    return params.model_dump()


def _since(handle: Handle) -> datetime:
    return datetime.fromisoformat(handle.data["since"])


def _first_run_since(handle: Handle) -> ObservedRun | None:
    return observed().first_run_since(handle.system or "", handle.data["job"], _since(handle))


def _observe_waits(handles: list[Handle]) -> list[Observation]:
    return [_observe_wait(h) for h in handles]


def _observe_wait(handle: Handle) -> Observation:
    run = _first_run_since(handle)
    where = f"{handle.system} job `{handle.data['job']}`"
    if run is None:
        missed = observed().first_missed_since(handle.system or "", handle.data["job"],
                                               _since(handle))
        if missed is not None:
            return Observation(handle=handle, state=NodeState.FAILED, remote_status="missed",
                               error=f"{where} missed its run due at {missed.isoformat()}: "
                                     "crond did not start it (or `interlock cron exec` did "
                                     "not report it)")
        return Observation(handle=handle, state=NodeState.RUNNING,
                           remote_status="waiting for the next run")
    state = run.state
    if state not in NODE_TERMINAL:
        return Observation(handle=handle, state=NodeState.RUNNING,
                           remote_status=f"run {run.external_id} running")
    details = run.details
    outputs = {"run": run.external_id, "exit_code": details.get("exit_code"),
               "signal": details.get("signal"), "duration_s": details.get("duration_s"),
               "host": details.get("host"),
               "started_at": run.started_at.isoformat() if run.started_at else None,
               "ended_at": run.ended_at.isoformat() if run.ended_at else None}
    tail = details.get("output_tail") or None
    error = None if state is NodeState.SUCCEEDED else \
        f"{where}: run {run.external_id} {run.remote_status}"
    return Observation(handle=handle, state=state, remote_status=run.remote_status,
                       outputs=outputs, error=error, log_excerpt=tail)
