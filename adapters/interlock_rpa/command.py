"""The `python -m robot ...` argv for one attempt: a list, never a shell string."""

from __future__ import annotations

import sys
from pathlib import Path

from interlock_rpa.layout import LOG_HTML, OUTPUT_XML, REPORT_HTML, RobotPaths
from interlock_rpa.params import RpaParams

NONE = "NONE"  # Robot's word for "do not write this file"


def build_argv(params: RpaParams, robot: Path, variable_files: list[str],
               paths: RobotPaths, *, reports: bool = True) -> list[str]:
    """``reports=False``: output.xml only. With secrets, the runner masks output.xml when the
    robot ends, and log.html and report.html are built from the masked file (`reports`):
    Robot compresses long messages inside them, where no mask could find a secret."""
    argv = [sys.executable, "-m", "robot", "--rpa" if params.rpa else "--norpa",
            "--outputdir", str(paths.output_dir), "--output", OUTPUT_XML,
            "--log", LOG_HTML if reports else NONE, "--report", REPORT_HTML if reports else NONE,
            "--consolecolors", "off", "--consolemarkers", "off"]
    # The node's variables come first: of the files given on the command line, the first
    # that defines a name wins, so `variables:` overrides `variable_files:`.
    for path in (paths.variables, *variable_files):
        argv += ["--variablefile", str(path)]
    for option, values in (("--task", params.tasks), ("--include", params.include),
                           ("--exclude", params.exclude)):
        for value in values:
            argv += [option, value]
    return [*argv, "--", str(robot)]
