"""Where a robot's files live inside its attempt directory (the script adapter's).

    <attempt>/variables.json     the node's `variables:`, written by `submit`
    <attempt>/robot/             Robot's --outputdir: output.xml, log.html, report.html,
                                 and whatever the robot saves to ${OUTPUT DIR} (screenshots)

Everything stays after the run: the node's outputs link to these paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

VARIABLES_FILE = "variables.json"
OUTPUT_DIR = "robot"
OUTPUT_XML = "output.xml"
LOG_HTML = "log.html"
REPORT_HTML = "report.html"
SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class RobotPaths:
    attempt_dir: Path

    @property
    def variables(self) -> Path:
        return self.attempt_dir / VARIABLES_FILE

    @property
    def output_dir(self) -> Path:
        return self.attempt_dir / OUTPUT_DIR

    @property
    def output_xml(self) -> Path:
        return self.output_dir / OUTPUT_XML

    @property
    def log_html(self) -> Path:
        return self.output_dir / LOG_HTML

    @property
    def report_html(self) -> Path:
        return self.output_dir / REPORT_HTML

    def screenshots(self) -> list[Path]:
        if not self.output_dir.is_dir():
            return []
        return sorted(p for p in self.output_dir.rglob("*")
                      if p.suffix.lower() in SCREENSHOT_SUFFIXES and p.is_file())
