"""Find the files a node names, resolved now so the robot runs exactly those."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interlock_script.prepare import resolve_cwd

from interlock.adapters import Rejected
from interlock_rpa.params import RpaParams

ROBOT_SUFFIX = ".robot"


@dataclass(frozen=True)
class Sources:
    cwd: Path
    robot: Path                   # a .robot file or a directory of them
    variable_files: list[str]     # paths, maybe with Robot's `:arguments`


def locate(params: RpaParams) -> Sources:
    cwd = resolve_cwd(params.cwd)
    robot = _existing(cwd, params.robot, "robot")
    if robot.is_dir() and not robot_files(robot):
        raise Rejected(f"robot directory {robot} has no {ROBOT_SUFFIX} files")
    return Sources(cwd=cwd, robot=robot,
                   variable_files=[_variable_file(cwd, v) for v in params.variable_files])


def robot_files(robot: Path) -> list[Path]:
    """The files Robot reads from ``robot``: itself, or every .robot file under it
    except those Robot skips (names starting with `.` or `_`, but `__init__.robot`)."""
    if robot.is_file():
        return [robot]
    return sorted(p for p in robot.rglob(f"*{ROBOT_SUFFIX}")
                  if p.is_file() and not _skipped(p.relative_to(robot)))


def _skipped(relative: Path) -> bool:
    return any(part.startswith((".", "_")) and part != "__init__.robot"
               for part in relative.parts)


def _existing(cwd: Path, given: str, what: str) -> Path:
    path = (cwd / Path(given).expanduser()).resolve()  # an absolute `given` replaces cwd
    if not path.exists():
        raise Rejected(f"{what} {given}: no such file or directory (looked for {path}; "
                       f"relative paths resolve against `cwd`, here {cwd})")
    return path


def _variable_file(cwd: Path, given: str) -> str:
    """Robot lets arguments follow a variable file's path (`vars.py:prod`): keep them."""
    name, sep, args = given.partition(":")
    if sep and not (cwd / given).exists():
        return f"{_existing(cwd, name, 'variable file')}:{args}"
    return str(_existing(cwd, given, "variable file"))
