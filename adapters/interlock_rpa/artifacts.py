"""The files a robot left, as the node's `outputs.artifacts` (absolute paths, kept).

Only files that resolve inside the robot's output directory are listed or linked: a
robot may leave a symlink there (to a file of the host, say), and the node's outputs
and its link must not point a reader at it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interlock.adapters.paths import is_inside
from interlock_rpa.layout import RobotPaths


def collect(paths: RobotPaths) -> dict[str, Any]:
    return {"output_dir": str(paths.output_dir),
            "output_xml": _kept(paths, paths.output_xml),
            "log_html": _kept(paths, paths.log_html),
            "report_html": _kept(paths, paths.report_html),
            "screenshots": [str(p) for p in paths.screenshots()
                            if _kept(paths, p) is not None]}


def log_url(paths: RobotPaths) -> str | None:
    """Where the node links to: Robot's log.html, once it exists (and is the robot's)."""
    return paths.log_html.as_uri() if _kept(paths, paths.log_html) else None


def _kept(paths: RobotPaths, path: Path) -> str | None:
    """``path`` if it is a file inside the output directory, symlinks followed."""
    return str(path) if path.is_file() and is_inside(paths.output_dir, path) else None
