"""Words of a crontab line, and cron's reading of `%` in a command (its do_command)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[^ \t]+")


@dataclass(frozen=True)
class Word:
    text: str
    col: int  # 1-based




class Bad(Exception):
    def __init__(self, column: int, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


def take(line: str, count: int) -> tuple[list[Word], str]:
    """The first ``count`` blank-separated words of ``line``, and the rest (blanks dropped)."""
    words: list[Word] = []
    end = 0
    for match in _WORD.finditer(line):
        if len(words) == count:
            break
        words.append(Word(match.group(), match.start() + 1))
        end = match.end()
    return words, line[end:].lstrip(" \t")


def first_percent(text: str) -> int:
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return i
    return -1


def unescape(command: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in command:
        if escaped and ch == "%":
            out[-1] = "%"
        else:
            out.append(ch)
        escaped = not escaped and ch == "\\"
    return "".join(out)


def stdin_text(text: str) -> str:
    """Cron's reading of the text after the first `%`: `%` is a newline, `\\%` a `%`."""
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped and ch != "%":
            out.append("\\")
        if not escaped and ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    return "".join(out)
