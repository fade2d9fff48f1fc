"""From a node's `with:` to the runner's spec.json, refusing what can never run."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from interlock.adapters import JobSpec, Rejected, paths
from interlock_script import run_as
from interlock_script.params import ScriptParams
from interlock_script.records import RunSpec

SHELL = "/bin/sh"
CWD_FIX = (f"use a folder inside one, or have the operator add its folder to "
           f"{paths.WORK_ROOTS_SETTING}")


def build_spec(params: ScriptParams, job: JobSpec, script_path: Path) -> RunSpec:
    user = run_as.resolve(params.system, job.flow)  # least privilege: docs/deploy.md
    cwd = resolve_cwd(params.cwd)
    if user is not None:
        run_as.check_reachable(user, cwd, script_path.parent.parent)
    argv = build_argv(params, script_path)
    check_executable(argv[0], cwd, params.env.get("PATH") or os.environ.get("PATH"))
    return RunSpec(argv=argv, cwd=str(cwd), run_id=job.run_id, node_id=job.node_id,
                   attempt=job.attempt, traceparent=job.traceparent, env=dict(params.env),
                   inherit_env=list(params.inherit_env), timeout_s=job.timeout_s,
                   log_max_bytes=params.log_max_bytes, run_as=user and user.name)


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
    """`cwd` resolved now, so the runner needs no context: a relative one against the
    worker's directory (a flow does not know the folder it came from: it may have been
    posted to the API), symlinks followed, and refused unless inside a work root."""
    path = paths.inside(paths.work_roots(), _expand_home(cwd or "."), "cwd",
                        base=Path.cwd(), strict=False, place=_roots_place(), fix=CWD_FIX)
    if not path.is_dir():
        raise Rejected(f"cwd {path} does not exist or is not a directory")
    return path


def _expand_home(cwd: str) -> str:
    try:
        return str(Path(cwd).expanduser())
    except RuntimeError:  # `~nosuchuser`
        raise Rejected(f"cwd {paths.shown(cwd)}: no such home directory") from None


def _roots_place() -> str:
    roots = paths.work_roots()
    return "the work roots (" + ", ".join(str(r) for r in roots) + ")"


def check_executable(program: str, cwd: Path, search_path: str | None) -> None:
    if os.sep in program:
        path = cwd / program  # an absolute `program` replaces `cwd` entirely
        if not path.is_file():
            raise Rejected(f"{program}: no such file (looked for {path})")
        if not os.access(path, os.X_OK):
            raise Rejected(f"{program}: not executable ({path})")
    elif shutil.which(program, path=search_path) is None:
        raise Rejected(f"{program}: not found on PATH ({search_path or os.defpath})")
