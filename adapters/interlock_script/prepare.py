"""From a node's `with:` to the runner's spec.json, refusing what can never run."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from interlock.adapters import JobSpec, Rejected
from interlock_script.params import ScriptParams
from interlock_script.records import RunSpec

SHELL = "/bin/sh"


def build_spec(params: ScriptParams, job: JobSpec, script_path: Path) -> RunSpec:
    cwd = resolve_cwd(params.cwd)
    argv = build_argv(params, script_path)
    check_executable(argv[0], cwd, params.env.get("PATH") or os.environ.get("PATH"))
    return RunSpec(argv=argv, cwd=str(cwd), run_id=job.run_id, node_id=job.node_id,
                   attempt=job.attempt, traceparent=job.traceparent, env=dict(params.env),
                   inherit_env=list(params.inherit_env), timeout_s=job.timeout_s,
                   log_max_bytes=params.log_max_bytes)


def build_argv(params: ScriptParams, script_path: Path) -> list[str]:
    if isinstance(params.command, str):
        return [SHELL, "-c", params.command]
    if params.command is not None:
        return list(params.command)
    interpreter = shlex.split(params.interpreter)
    if not interpreter:
        raise Rejected("`interpreter` is empty")
    return [*interpreter, str(script_path)]


def resolve_cwd(cwd: str | None) -> Path:
    # Resolved now, against the worker's directory, so the runner needs no context.
    path = Path(cwd or ".").expanduser().resolve()
    if not path.is_dir():
        raise Rejected(f"cwd {path} does not exist or is not a directory")
    return path


def check_executable(program: str, cwd: Path, search_path: str | None) -> None:
    if os.sep in program:
        path = cwd / program  # an absolute `program` replaces `cwd` entirely
        if not path.is_file():
            raise Rejected(f"{program}: no such file (looked for {path})")
        if not os.access(path, os.X_OK):
            raise Rejected(f"{program}: not executable ({path})")
    elif shutil.which(program, path=search_path) is None:
        raise Rejected(f"{program}: not found on PATH ({search_path or os.defpath})")
