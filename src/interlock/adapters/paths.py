"""Paths from outside stay inside their roots: the one containment check adapters use.

A path an adapter is handed (a node's `with:`, a run's inputs rendered into it, a handle
read back from the store, a file a foreign process may have replaced) is hostile until it
is resolved, symlinks followed, and found at or below a root the operator chose.
:func:`inside` does that and answers with the resolved path, which the adapter then uses
instead of the text it was given; anything else is :class:`Rejected`, naming the value,
where it led and what to do. A symlink inside a root that points outside it is outside.

:func:`work_roots` are the folders local processes may run in (`INTERLOCK_WORK_ROOTS`,
`os.pathsep`-separated; by default the worker's current directory).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from interlock.config.env import settings
from interlock.errors import Rejected

NUL = "\0"
PARENT = ".."
WORK_ROOTS_SETTING = "INTERLOCK_WORK_ROOTS"
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

Roots = Path | Sequence[Path]


def work_roots() -> tuple[Path, ...]:
    """The configured work roots, resolved; by default the worker's current directory."""
    return tuple(r.resolve() for r in settings().work_roots) or (Path.cwd().resolve(),)


def inside(root: Roots, given: str | os.PathLike[str], what: str, *,
           base: Path | None = None, strict: bool = True, downward: bool = False,
           place: str = "", fix: str = "") -> Path:
    """``given`` resolved (a relative one against ``base``, by default the first root;
    symlinks followed) if it is a root or below one; else Rejected.

    ``what`` names the value (`variable file`), ``place`` the root in words (`the robot's
    folder`), ``fix`` what the person should do. With ``strict`` the path must exist;
    with ``downward`` it may not have a `..` component at all (a value rendered into a
    path, `vars/{{ inputs.region }}.py`, then cannot climb even where it would land
    inside). Containment is checked before existence, so nothing outside is probed.
    """
    roots = _as_tuple(root)
    text = os.fspath(given)
    if NUL in text:
        raise Rejected(f"{what} {text!r} contains a NUL byte; a path cannot hold one")
    if downward and PARENT in Path(text).parts:
        raise Rejected(f"{what} {shown(text)} has a `{PARENT}` component; name it from "
                       f"{place or _roots_text(list(roots))} downward")
    start = base if base is not None else roots[0]
    path = _resolve(start / text, what, text)
    resolved_roots = [r.resolve() for r in roots]
    if not any(path.is_relative_to(r) for r in resolved_roots):
        led = "is" if str(path) == text else f"resolves to {path},"
        raise Rejected(f"{what} {shown(text)} {led} outside "
                       f"{place or _roots_text(resolved_roots)}; {fix or _DEFAULT_FIX}")
    if strict and not path.exists():
        raise Rejected(f"{what} {shown(text)}: no such file or directory (looked for {path}; "
                       f"relative paths resolve against {start})")
    return path


def is_inside(root: Roots, given: str | os.PathLike[str]) -> bool:
    """Whether ``given`` resolves at or below a root (for files that are skipped, not
    refused, when they lead out: a robot's screenshots, say)."""
    try:
        inside(root, given, "path", strict=False)
    except Rejected:
        return False
    return True


def open_inside(root: Roots, given: str | os.PathLike[str], what: str) -> BinaryIO:
    """``given`` opened for reading once :func:`inside` ``root``; the last component is
    opened without following a symlink, so a file swapped for a link after the check is
    refused too. A missing file raises FileNotFoundError, as `open` does."""
    path = inside(root, given, what, strict=False)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Rejected(f"{what} {path} became a symbolic link; refused") from None
        raise
    return os.fdopen(fd, "rb")


def shown(text: str) -> str:
    """A value as an error quotes it: as it is when printable, else repr-quoted, so a
    hostile newline or escape code cannot forge a line of the message."""
    return text if text.isprintable() and text.strip() == text and text else repr(text)


_DEFAULT_FIX = "use a path inside it"


def _as_tuple(root: Roots) -> tuple[Path, ...]:
    roots = (root,) if isinstance(root, Path) else tuple(root)
    if not roots:
        raise ValueError("inside() needs at least one root")
    return roots


def _resolve(path: Path, what: str, text: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
        raise Rejected(f"{what} {shown(text)} cannot be resolved: {e}") from None


def _roots_text(roots: list[Path]) -> str:
    if len(roots) == 1:
        return str(roots[0])
    return "the roots " + ", ".join(str(r) for r in roots)
