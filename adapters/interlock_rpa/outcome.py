"""Turn the script layer's verdict on a finished robot into the robot's own.

The script layer knows how the process ended (exit code, timeout, cancel, lost); the
robot's output.xml knows which tasks passed and why the others failed.
"""

from __future__ import annotations

from dataclasses import replace
from enum import IntEnum
from pathlib import Path
from typing import Any

from interlock_script.layout import AttemptPaths
from interlock_script.observe import paths_of
from interlock_script.outputs import OutputsError, parse_outputs
from interlock_script.records import RunResult

from interlock.adapters import NodeState, Observation
from interlock_rpa.artifacts import collect, log_url
from interlock_rpa.layout import RobotPaths
from interlock_rpa.reports import build_missing
from interlock_rpa.results import ResultsError, RobotResults, read_results

MAX_LOG_LINES = 10
_EXITED = (NodeState.SUCCEEDED, NodeState.FAILED)  # the script's verdicts on an exit code
_ERROR_PREFIX = "[ ERROR ] "


class RobotExit(IntEnum):
    """Robot Framework's exit codes; 1 to 250 count the failed tasks."""

    ALL_PASSED = 0
    HELP = 251            # --help or --version: nothing ran
    DATA_ERROR = 252      # invalid data or options, or no task matched the selection
    STOPPED = 253         # stopped by a signal (Ctrl-C, SIGTERM)
    INTERNAL_ERROR = 255  # a bug in Robot Framework or a library it loaded


_COULD_NOT_RUN = {RobotExit.HELP: "it printed help instead of running",
                  RobotExit.DATA_ERROR: "invalid robot data or options",
                  RobotExit.INTERNAL_ERROR: "an unexpected internal error"}


def conclude(obs: Observation) -> Observation:
    """The robot's observation: the script's, with the robot's results and files added."""
    if not obs.finished:
        return obs
    script = paths_of(obs.handle)
    robot = RobotPaths(script.dir)
    build_missing(robot)
    results, missing = _read(robot)
    outputs, outputs_error = _user_outputs(script)
    outputs["artifacts"] = collect(robot)
    if results is not None:
        outputs["robot"] = results.summary()
    seen = replace(obs, handle=replace(obs.handle, url=log_url(robot)), outputs=outputs)
    run = RunResult.load(script.result)
    if obs.state not in _EXITED or run is None or run.exit_code is None:
        return seen  # timed out, cancelled, lost, killed or never started: as the script says
    state, status, error = _verdict(run.exit_code, results, missing, script.log)
    if state is NodeState.SUCCEEDED and outputs_error:
        state, error = NodeState.FAILED, outputs_error
    return replace(seen, state=state, remote_status=status, error=error)


def _read(robot: RobotPaths) -> tuple[RobotResults | None, str]:
    """The results, or None and why there are none."""
    try:
        return read_results(robot.output_xml), ""
    except ResultsError as e:
        return None, str(e)


def _verdict(code: int, results: RobotResults | None, missing: str,
             log: Path) -> tuple[NodeState, str, str | None]:
    if code in _COULD_NOT_RUN:
        meaning = _COULD_NOT_RUN[RobotExit(code)]
        return (NodeState.FAILED, f"robot exited {code}",
                f"robot could not run ({meaning}, exit code {code}):\n{robot_messages(log)}")
    if results is None:
        return (NodeState.FAILED, f"robot exited {code}",
                f"robot exited {code} without results ({missing}):\n{robot_messages(log)}")
    if code == RobotExit.ALL_PASSED and not results.failed_tasks:
        return NodeState.SUCCEEDED, results.describe(), None
    text = results.failure_text()
    if code == RobotExit.STOPPED:
        text = f"robot was stopped by a signal (exit code {code})\n{text}"
    elif not results.failed_tasks:
        text = f"robot exited {code} with no failed task\n{text}"
    return NodeState.FAILED, results.describe(), text.strip()


def robot_messages(log: Path) -> str:
    """What Robot printed about its trouble: its `[ ERROR ]` lines, else the log's tail."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no console output)"
    lines = [line.strip() for line in text.splitlines()]
    errors = [line.removeprefix(_ERROR_PREFIX) for line in lines if line.startswith(_ERROR_PREFIX)]
    return "\n".join(errors or [line for line in lines if line][-MAX_LOG_LINES:])


def _user_outputs(script: AttemptPaths) -> tuple[dict[str, Any], str | None]:
    """What the robot set with `Set Interlock Output` (or wrote to $INTERLOCK_OUTPUT)."""
    try:
        return parse_outputs(script.outputs.read_text(encoding="utf-8", errors="replace")), None
    except FileNotFoundError:
        return {}, None
    except OutputsError as e:
        return {}, f"bad outputs file {script.outputs}: {e}"
