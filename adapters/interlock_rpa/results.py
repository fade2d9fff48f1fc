"""Read a robot's output.xml (through `robot.api.ExecutionResult`) into plain data."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from robot.api import ExecutionResult
from robot.errors import DataError

MAX_ERRORS = 5  # execution errors (an import that failed, say) quoted in a failure


class TaskStatus(StrEnum):
    """Robot's own words for a task's status."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"
    NOT_RUN = "NOT RUN"


class ResultsError(Exception):
    """output.xml is missing or cannot be read (a robot killed while writing it)."""


@dataclass(frozen=True)
class TaskResult:
    name: str
    status: str
    message: str
    elapsed_s: float

    @property
    def failed(self) -> bool:
        return self.status == TaskStatus.FAIL

    def summary(self) -> dict[str, Any]:
        return {"status": self.status, "message": self.message, "elapsed_s": self.elapsed_s}


@dataclass(frozen=True)
class RobotResults:
    status: str                  # the top suite's: PASS, FAIL or SKIP
    tasks: list[TaskResult]      # in the order they ran
    errors: list[str]            # ERROR messages of the execution (not of tasks)

    @property
    def failed_tasks(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.failed]

    def count(self, status: TaskStatus) -> int:
        return sum(t.status == status for t in self.tasks)

    def summary(self) -> dict[str, Any]:
        """The node's `outputs.robot`."""
        return {"status": self.status, "passed": self.count(TaskStatus.PASS),
                "failed": self.count(TaskStatus.FAIL), "skipped": self.count(TaskStatus.SKIP),
                "tasks": {t.name: t.summary() for t in self.tasks}}

    def describe(self) -> str:
        """One line for operators: `PASS: 2 tasks, 2 passed, 0 failed, 0 skipped`."""
        return (f"{self.status}: {len(self.tasks)} task{'s' * (len(self.tasks) != 1)}, "
                f"{self.count(TaskStatus.PASS)} passed, {self.count(TaskStatus.FAIL)} failed, "
                f"{self.count(TaskStatus.SKIP)} skipped")

    def failure_text(self) -> str:
        """Each failed task with its message (tasks failing alike, as after a failed suite
        setup, share a line), then the execution's own errors."""
        by_message: dict[str, list[str]] = {}
        for task in self.failed_tasks:
            by_message.setdefault(task.message or "(no message)", []).append(f'"{task.name}"')
        lines = [f"task {names[0]} failed: {message}" if len(names) == 1
                 else f"tasks {', '.join(names)} failed: {message}"
                 for message, names in by_message.items()]
        lines += [f"robot error: {e}" for e in self.errors[:MAX_ERRORS]]
        return "\n".join(lines)


def read_results(output_xml: Path) -> RobotResults:
    if not output_xml.is_file():
        raise ResultsError(f"{output_xml} was not written")
    try:
        result = ExecutionResult(str(output_xml))
    except DataError as e:
        raise ResultsError(f"cannot read {output_xml}: {e}") from None
    tests = list(result.suite.all_tests)
    names = _task_names(tests)
    return RobotResults(
        status=result.suite.status,
        tasks=[TaskResult(name=name, status=t.status, message=t.message,
                          elapsed_s=round(t.elapsed_time.total_seconds(), 3))
               for name, t in zip(names, tests, strict=True)],
        errors=[m.message for m in result.errors.messages if m.level == "ERROR"])


def _task_names(tests: list[Any]) -> list[str]:
    """A task's name, or its full name (`Suite.Sub.Task`) where names would collide."""
    counts = Counter(t.name for t in tests)
    return [t.name if t.name and counts[t.name] == 1 else t.full_name for t in tests]
