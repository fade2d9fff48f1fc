"""Interlock's exceptions.

    InterlockError
    ├── IllegalTransition      a state change the transition table forbids (a bug, or a race lost)
    ├── SpecError              a flow or systems file is invalid; carries every Problem found
    ├── ExpressionError        a `{{ }}` expression failed to parse or render
    ├── NotFound               a run, flow, node or attempt that does not exist
    ├── Conflict               the request is valid but the target's state forbids it
    └── AdapterError           raised by adapters
        ├── Transient          retry with backoff: timeouts, 429, 5xx, connection refused
        └── Rejected           do not retry: the request will not succeed as it stands
"""

from __future__ import annotations

from dataclasses import dataclass


class InterlockError(Exception):
    """Base of every error Interlock raises on purpose."""


class IllegalTransition(InterlockError):
    pass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, located for a person to fix."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class SpecError(InterlockError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ExpressionError(InterlockError):
    pass


class NotFound(InterlockError):
    pass


class Conflict(InterlockError):
    pass


class AdapterError(InterlockError):
    pass


class Transient(AdapterError):
    """The call may succeed later: retry with backoff, keep the attempt in flight."""


class Rejected(AdapterError):
    """The call will not succeed as it stands: fail the attempt with this message."""
