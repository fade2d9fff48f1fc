"""Parse robot files before anything runs, so a syntax error names its file and line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robot.api import Token, get_init_model, get_model
from robot.api.parsing import ModelVisitor

from interlock.adapters import Rejected
from interlock_rpa.sources import robot_files

INIT_FILE = "__init__.robot"
MAX_LISTED = 20
# Robot reports errors on these tokens as warnings and runs on: deprecated singular
# section headers (`*** Task ***`) and the `[Return]` setting.
_WARNING_TOKENS = frozenset(set(Token.HEADER_TOKENS) - {Token.INVALID_HEADER}
                            | {Token.RETURN_SETTING})


@dataclass(frozen=True, order=True)
class SyntaxProblem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def check_syntax(robot: Path) -> None:
    """Rejected with every problem Robot's parser finds in the robot file(s), located."""
    problems = [p for path in robot_files(robot) for p in problems_in(path)]
    if not problems:
        return
    listed = "\n".join(str(p) for p in problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    tail = f"\n... and {more} more" if more > 0 else ""
    raise Rejected(f"robot {robot} has {_count(len(problems))}; nothing was run:\n"
                   f"{listed}{tail}")


def problems_in(path: Path) -> list[SyntaxProblem]:
    model = get_init_model(path) if path.name == INIT_FILE else get_model(path)
    collector = _Collector()
    collector.visit(model)
    return sorted({SyntaxProblem(str(path), line, message)
                   for line, message in collector.found})


class _Collector(ModelVisitor):
    """Errors sit on blocks (an unclosed FOR), statements and tokens (a bad header)."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def generic_visit(self, node: Any) -> None:
        self.found += [(node.lineno, e) for e in _errors(node)]
        super().generic_visit(node)


def _errors(node: Any) -> Iterator[str]:
    yield from (e for e in getattr(node, "errors", ()) or () if e)
    for token in getattr(node, "tokens", ()):
        if token.error and token.type not in _WARNING_TOKENS:
            yield token.error


def _count(n: int) -> str:
    return "1 syntax error" if n == 1 else f"{n} syntax errors"
