"""A job's id: a slug of the program its command runs, unique in its crontab."""

from __future__ import annotations

import os
import re

_INTERPRETER = re.compile(r"(?:ba|da|k|z)?sh|python[0-9.]*|perl|ruby|php[0-9.]*|node(?:js)?")
_WRAPPERS = frozenset({"env", "nohup", "exec", "nice", "ionice", "time", "command"})
_ASSIGN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_CONNECTORS = ("&&", "||", ";")


def program(command: str) -> str:
    """The word naming what ``command`` runs: past `NAME=value`, `cd DIR &&`, `test ... ||`,
    `{`, `nice -n 5`...; `test -x PROG && ...` names PROG; `sh script.sh` names the script;
    `run-parts DIR` names DIR."""
    words = command.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("{", "(", "!") or _ASSIGN_WORD.fullmatch(word):
            i += 1
        elif word in _WRAPPERS:
            i += 1
            while i < len(words) and (words[i].startswith("-") or words[i].isdigit()):
                i += 1
        elif word in ("cd", "test", "["):
            if word != "cd" and words[i + 1:i + 2] == ["-x"] and _connector(words, i) == "&&":
                return words[i + 2] if i + 2 < len(words) else ""
            i = _after_connector(words, i)
        else:
            return _named(words[i:])
    return ""


def _named(words: list[str]) -> str:
    name = os.path.basename(words[0])
    args = _arguments(words[1:])
    if name == "run-parts" and args:
        return os.path.basename(args[-1].rstrip("/")).replace(".", "-")
    if _INTERPRETER.fullmatch(name) and len(words) > 1 and not words[1].startswith("-"):
        return words[1]
    return words[0]


def _arguments(words: list[str]) -> list[str]:
    """The non-option words up to the end of the simple command they start."""
    args: list[str] = []
    for word in words:
        if word in _CONNECTORS or word in ("|", "}", ")"):
            break
        if not word.startswith("-") and word.rstrip(";)}"):
            args.append(word.rstrip(";)}"))
        if word.endswith(";"):
            break
    return args


def _connector(words: list[str], start: int) -> str:
    for word in words[start:]:
        if word in _CONNECTORS:
            return word
        if word.endswith(";"):
            return ";"
    return ""


def _after_connector(words: list[str], start: int) -> int:
    for i in range(start, len(words)):
        if words[i] in _CONNECTORS or words[i].endswith(";"):
            return i + 1
    return len(words)


def slug(program: str) -> str:
    """`[a-z0-9-]` from the basename of ``program`` minus its extension; `job` if empty,
    `job-` before one that starts with a digit (ids start with a letter)."""
    name = os.path.basename(program.rstrip(";)}&|'\"/"))
    stem = os.path.splitext(name)[0] or name
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:100].strip("-")
    if not slug:
        return "job"
    return slug if slug[0].isalpha() else f"job-{slug}"


def unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate
