"""Find the files a node names, resolved now so the robot runs exactly those.

A robot and its variable files must be inside the robot's folder, `cwd` (itself inside a
work root, see `interlock_script.prepare.resolve_cwd`), named from it downward (no `..`):
`{{ inputs.region }}` rendered into `vars/{{ inputs.region }}.py` cannot pick another
Python file, not through `../`, an absolute path or a symlink. Robot is handed the
resolved paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from interlock_script.prepare import resolve_cwd
from robot.utils import split_args_from_name_or_path

from interlock.adapters import Rejected, paths
from interlock_rpa.params import RpaParams

ROBOT_SUFFIX = ".robot"
ARG_SEPARATORS = (":", ";")  # Robot's, between a variable file and its arguments
ROBOT_FOLDER = "the robot's folder"
FIX = "keep it inside `cwd`, or set `cwd` to a folder that holds the robot and its files"


@dataclass(frozen=True)
class Sources:
    cwd: Path
    robot: Path                   # a .robot file or a directory of them
    variable_files: list[str]     # paths, maybe with Robot's `:arguments`


def locate(params: RpaParams) -> Sources:
    cwd = resolve_cwd(params.cwd)
    robot = _inside(cwd, params.robot, "robot")
    if robot.is_dir():
        _check_links(cwd, robot)
        if not robot_files(robot):
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


def _inside(cwd: Path, given: str | Path, what: str, *, strict: bool = True) -> Path:
    """Inside `cwd`, and named downward from it: no `..` even where it would land inside."""
    return paths.inside(cwd, given, what, strict=strict, downward=True,
                        place=f"{ROBOT_FOLDER} {cwd} (`cwd`)", fix=FIX)


def _check_links(cwd: Path, directory: Path) -> None:
    """Robot follows symlinks in a directory of robots: each must stay inside `cwd`."""
    for folder, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            entry = Path(folder, name)
            if entry.is_symlink():
                _inside(cwd, entry, f"robot {directory}: link", strict=False)


def _variable_file(cwd: Path, given: str) -> str:
    """Robot lets arguments follow a variable file's path (`vars.py:prod`, `vars.py;a;b`):
    the path is checked, the arguments kept, and Robot's own parser must read the result
    back as the file that was checked."""
    name, tail = given, ""
    if not _exists(cwd, given):  # as Robot does: a whole name that exists has no arguments
        name, tail = _split_arguments(given)
    path = _inside(cwd, name, "variable file")
    argument = f"{path}{tail}"
    read_back, _ = split_args_from_name_or_path(argument)
    if Path(read_back) != path:
        raise Rejected(f"variable file {paths.shown(given)}: Robot would read it as "
                       f"{read_back}, not {path}; rename the folder or file so that its path "
                       f"has no {' or '.join(ARG_SEPARATORS)}")
    return argument


def _exists(cwd: Path, given: str) -> bool:
    """Whether ``given`` names an existing file as a whole; nothing outside is probed."""
    return paths.is_inside(cwd, cwd / given) and (cwd / given).exists()


def _split_arguments(given: str) -> tuple[str, str]:
    """``given`` split where Robot splits it: at the first `:` or `;` (the separator and
    the arguments are the tail, kept as written)."""
    found = [i for i in (given.find(s) for s in ARG_SEPARATORS) if i >= 0]
    return (given[:min(found)], given[min(found):]) if found else (given, "")
