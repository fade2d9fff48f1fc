"""Namespace patterns of role bindings: `*` (every namespace), `finance` or `finance.*`
(finance and every namespace below it: children inherit their parent's bindings)."""

from __future__ import annotations

import re

EVERYWHERE = "*"
_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(\.\*)?)$")


class BadPattern(ValueError):
    pass


def check_pattern(pattern: str) -> str:
    if len(pattern) > 200 or not _PATTERN.match(pattern):
        raise BadPattern(f"namespace pattern {pattern!r} is not `*`, `a.b` or `a.b.*`")
    return pattern


def root(pattern: str) -> str:
    """The namespace a pattern is anchored at (`finance` for `finance.*`)."""
    return pattern.removesuffix(".*")


def matches(pattern: str, namespace: str) -> bool:
    """Whether a binding on ``pattern`` covers ``namespace``."""
    if pattern == EVERYWHERE:
        return True
    anchor = root(pattern)
    return namespace == anchor or namespace.startswith(anchor + ".")
