"""The files a robot left, as the node's `outputs.artifacts` (absolute paths, kept)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interlock_rpa.layout import RobotPaths


def collect(paths: RobotPaths) -> dict[str, Any]:
    return {"output_dir": str(paths.output_dir),
            "output_xml": _existing(paths.output_xml),
            "log_html": _existing(paths.log_html),
            "report_html": _existing(paths.report_html),
            "screenshots": [str(p) for p in paths.screenshots()]}


def log_url(paths: RobotPaths) -> str | None:
    """Where the node links to: Robot's log.html, once it exists."""
    return paths.log_html.as_uri() if paths.log_html.is_file() else None


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None
