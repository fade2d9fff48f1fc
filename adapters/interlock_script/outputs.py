"""Parse the file a script writes its outputs to ($INTERLOCK_OUTPUT).

Two forms: one JSON object (the content starts with ``{``), or lines in the style
of GitHub Actions' $GITHUB_OUTPUT::

    name=value
    # comments and blank lines are ignored
    body<<EOF
    several
    lines
    EOF

A ``name=value`` value that is a JSON scalar literal is typed: an integer (``count=3``), a
number (``ratio=0.5``, ``big=1e6``), ``true``/``false`` or ``null``; anything else, and every
heredoc body, stays text (``zip=007``, ``id= 3``, integers beyond 64 bits). So
``{{ nodes.a.outputs.count > 0 }}`` compares numbers. A JSON-object file keeps its types.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)  # larger integers stay text: ids keep every digit
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
_HEREDOC = "<<"


class OutputsError(ValueError):
    def __init__(self, line: int, message: str):
        self.line = line
        super().__init__(f"outputs line {line}: {message}")


def parse_outputs(text: str) -> dict[str, Any]:
    if text.lstrip().startswith("{"):
        return _parse_json(text)
    return _parse_lines(text)


def _parse_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise OutputsError(e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(value, dict):
        raise OutputsError(1, "a JSON outputs file must hold one object")
    return value


def _parse_lines(text: str) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    lines = _numbered(text)
    for number, line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, value = _split(number, line)
        if isinstance(value, _Heredoc):
            value = _read_heredoc(lines, number, key, value.delimiter)  # always text
        else:
            value = typed(value)
        outputs[key] = value  # a later line wins, as in GitHub Actions
    return outputs


def typed(value: str) -> Any:
    """``value`` as the JSON scalar it spells exactly (int, float, bool, None), else itself."""
    if value in _LITERALS:
        return _LITERALS[value]
    if _INTEGER.fullmatch(value):
        if len(value) > 20:  # beyond 64 bits (and int() of 5000 digits would raise)
            return value
        number = int(value)
        return number if _INT64[0] <= number <= _INT64[1] else value
    if _NUMBER.fullmatch(value):
        result = float(value)
        return result if math.isfinite(result) else value  # 1e999 stays text
    return value


class _Heredoc:
    def __init__(self, delimiter: str):
        self.delimiter = delimiter


def _split(number: int, line: str) -> tuple[str, str | _Heredoc]:
    eq, heredoc = line.find("="), line.find(_HEREDOC)
    if heredoc != -1 and (eq == -1 or heredoc < eq):
        key, delimiter = line[:heredoc], line[heredoc + len(_HEREDOC):].strip()
        if not delimiter:
            raise OutputsError(number, f"missing delimiter after `{key}<<`")
        return _checked_key(number, key), _Heredoc(delimiter)
    if eq == -1:
        raise OutputsError(number, f"expected `name=value` or `name<<DELIMITER`, got {line!r}")
    return _checked_key(number, line[:eq]), line[eq + 1:]


def _checked_key(number: int, key: str) -> str:
    if not _KEY.fullmatch(key):
        raise OutputsError(number, f"invalid output name {key!r} "
                                   "(letters, digits, `_`, `.`, `-`; not starting with a digit)")
    return key


def _read_heredoc(lines: Iterator[tuple[int, str]], opened: int, key: str, delimiter: str) -> str:
    body: list[str] = []
    for _, line in lines:
        if line.rstrip() == delimiter:
            return "\n".join(body)
        body.append(line)
    raise OutputsError(opened, f"`{key}<<{delimiter}` is never closed by a `{delimiter}` line")


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    return iter(enumerate(text.splitlines(), start=1))
