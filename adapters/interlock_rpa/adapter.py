"""`uses: rpa`: run a Robot Framework robot as a supervised subprocess.

A robot is a script with more to say: `submit` checks the robot file parses, writes
the node's variables to a JSON variables file and hands `python -m robot ...` to the
script adapter, which runs it in a detached runner (timeout, cancel, logs, LOST,
idempotency by key). `poll` then reads output.xml for each task's status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

from interlock_script.adapter import ScriptAdapter
from interlock_script.layout import AttemptPaths, dir_name_for, write_atomically
from interlock_script.secret_env import only_in_env
from pydantic import BaseModel, ValidationError

from interlock.adapters import Handle, JobSpec, Observation, Rejected, settings
from interlock_rpa.command import build_argv
from interlock_rpa.layout import RobotPaths
from interlock_rpa.outcome import conclude
from interlock_rpa.params import RpaParams
from interlock_rpa.sources import Sources, locate
from interlock_rpa.syntax import check_syntax

KIND = "rpa"


class RpaAdapter(ScriptAdapter):
    kind: ClassVar[str] = KIND
    params_model: ClassVar[type[BaseModel]] = RpaParams

    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        params = _params(job)
        only_in_env(job.params, job.secrets, KIND)  # before variables.json is written
        paths = RobotPaths(settings().attempts_dir / dir_name_for(key))
        sources = locate(params)
        if not AttemptPaths(paths.attempt_dir).spawned.exists():  # else adopt what runs
            check_syntax(sources.robot)
            _write_variables(paths, params.variables)
        script_job = replace(job, params=_script_params(params, sources, paths,
                                                        reports=not job.secrets))
        return _as_robot(super().submit(script_job, key=key))

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return [conclude(obs) for obs in super().poll(handles)]


def _params(job: JobSpec) -> RpaParams:
    try:
        return RpaParams.model_validate(job.params)
    except ValidationError as e:
        raise Rejected(f"invalid `with:` for uses: {KIND}: {e}") from None


def _script_params(params: RpaParams, sources: Sources, paths: RobotPaths, *,
                   reports: bool) -> dict[str, Any]:
    argv = build_argv(params, sources.robot, sources.variable_files, paths, reports=reports)
    return {"command": argv, "env": params.env, "inherit_env": params.inherit_env,
            "cwd": str(sources.cwd), "system": params.system}


def _write_variables(paths: RobotPaths, variables: dict[str, Any]) -> None:
    paths.attempt_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(paths.variables, json.dumps(variables, indent=2, ensure_ascii=False))
    # Made now, so a robot run as another user (`run_as`) is handed it (identity.py).
    paths.output_dir.mkdir(exist_ok=True, mode=0o700)


def _as_robot(result: Handle | Observation) -> Handle | Observation:
    if isinstance(result, Observation):
        return replace(result, handle=replace(result.handle, kind=KIND))
    return replace(result, kind=KIND)
