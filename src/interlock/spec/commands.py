"""Argv lists that carry code: `[sh, -c, SCRIPT]`, `[python3, -c, CODE]`, `[perl, -e, CODE]`.

An argv `command` passes each item as one argument, so a value cannot change its shape;
but when the program is an interpreter and the item is the code it runs, a value pasted
into that item is pasted into code. A shell's script item is rendered like a string
`command` (each `{{ }}` one quoted word); other interpreters' code items may hold no
expression at all (`spec.checks`), as inline `script:` bodies may not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

# Programs whose code item is a shell script.
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
# A shell's `-c`, alone or among other one-letter options (`-ec`, `-lc`, `-xc`).
_SHELL_CODE_FLAG = re.compile(r"-[A-Za-z]*c[A-Za-z]*")
# Other interpreters and the options after which their code comes.
CODE_FLAGS: dict[str, frozenset[str]] = {
    "python": frozenset({"-c"}), "pypy": frozenset({"-c"}),
    "perl": frozenset({"-e", "-E"}), "ruby": frozenset({"-e"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}), "php": frozenset({"-r"}),
    "pwsh": frozenset({"-c", "-command"}), "powershell": frozenset({"-c", "-command"}),
    "osascript": frozenset({"-e"}), "rscript": frozenset({"-e"}),
    "fish": frozenset({"-c", "--command"}), "tclsh": frozenset({"-c"}),
}
_ENV_PROGRAM = "env"                       # `[env, A=1, sh, -c, ...]` runs `sh`
_ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
_VERSION = re.compile(r"[0-9.]+$")         # python3.12 -> python


def program_name(word: str) -> str:
    """`/usr/bin/python3.12` -> `python`; `bash` -> `bash`."""
    return _VERSION.sub("", PurePosixPath(word).name.lower()) or word


def code_item(argv: Sequence[object]) -> tuple[int, bool] | None:
    """(index of the item that is code, whether a shell runs it), or None."""
    words = [w if isinstance(w, str) else "" for w in argv]
    start = 0
    if words and program_name(words[0]) == _ENV_PROGRAM:
        start = 1
        while start < len(words) and _ENV_ASSIGNMENT.fullmatch(words[start]):
            start += 1
    if start >= len(words):
        return None
    program = program_name(words[start])
    shell = program in SHELLS
    flags = CODE_FLAGS.get(program, frozenset())
    if not shell and not flags:
        return None
    for i in range(start + 1, len(words) - 1):
        word = words[i]
        if word == "--" or not word.startswith("-"):
            return None  # options end: what follows is a script file and its arguments
        if (shell and not word.startswith("--") and _SHELL_CODE_FLAG.fullmatch(word)) \
                or word.lower() in flags:
            return i + 1, shell
    return None
