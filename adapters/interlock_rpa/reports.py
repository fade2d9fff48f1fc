"""log.html and report.html rebuilt from output.xml, for robots that ran with secrets.

Such a robot writes output.xml only; the runner masks it when the robot ends, and the
first poll that sees the attempt finished builds the reports from the masked file.
"""

from __future__ import annotations

import io
import os
import tempfile

from robot import rebot

from interlock_rpa.layout import LOG_HTML, REPORT_HTML, RobotPaths

NO_OUTPUT = "NONE"


def build_missing(robot: RobotPaths) -> None:
    """Write the reports from output.xml when the robot did not (idempotent). They are
    built in a folder of the worker's own and moved in: the robot's folder may belong to
    the node's `run_as` user, who could have planted a symlink where a report goes."""
    if os.path.lexists(robot.log_html) or not robot.output_xml.is_file():
        return
    with tempfile.TemporaryDirectory(dir=robot.attempt_dir) as built:
        rebot(str(robot.output_xml), outputdir=built, log=LOG_HTML, report=REPORT_HTML,
              output=NO_OUTPUT, stdout=io.StringIO(), stderr=io.StringIO())
        for name in (REPORT_HTML, LOG_HTML):  # log.html last: its presence means done
            if os.path.exists(os.path.join(built, name)):
                os.replace(os.path.join(built, name), robot.output_dir / name)
