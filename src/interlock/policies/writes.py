"""Policies written through the API go into the policy folder, as files: one source of truth
(what `interlock validate` and every process read), reviewable and versionable like the
files people write by hand. A write replaces the file that holds the policy of that name
(or makes `<name>.yaml`), atomically (a temporary file renamed over it); a delete removes it.

Several API replicas must share the folder (a mounted volume, like the systems file).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from interlock.config.env import settings
from interlock.errors import Conflict, NotFound, SpecError
from interlock.policies.load import SUFFIXES, Loaded, load_policies, parse_policy

NEW_SUFFIX = SUFFIXES[0]
LOCK_FILE = ".policies.lock"  # not a policy file (no policy suffix)
FILE_MODE = 0o644  # readable by every process that applies policies (workers, replicas)


@contextmanager
def folder_lock(*, create: bool) -> Iterator[None]:
    """One writer at a time in the policy folder (across processes sharing it), so a
    read-check-replace is atomic and `expected_revision` cannot be raced. Without
    ``create``, a missing folder is not made (nothing in it to change)."""
    folder = settings().policies_dir
    if not create and not folder.is_dir():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class NameMismatch(SpecError):
    pass


def parse_named(name: str, source: str) -> Loaded:
    """The policy text, checked (located problems), whose `policy:` must be ``name``."""
    loaded = parse_policy(source, f"{name}{NEW_SUFFIX}")
    if loaded.policy.policy != name:
        raise Conflict(f"the text names policy `{loaded.policy.policy}`, the path `{name}`: "
                       "they must be the same")
    return loaded


def current(name: str) -> Loaded | None:
    """The policy of that name in the folder (the folder must load: a broken file is fixed
    first, not written around)."""
    return next((p for p in load_policies() if p.policy.policy == name), None)


def write(loaded: Loaded, source: str, *, expected: str | None) -> tuple[Loaded | None, Path]:
    """Write ``source`` where the policy lives (or to `<name>.yaml`); returns the previous
    version and the path. ``expected``: the revision the writer read (409 if it changed)."""
    name = loaded.policy.policy
    before = current(name)
    if expected is not None and (before is None or before.revision != expected):
        found = before.revision if before else "none"
        raise Conflict(f"policy `{name}` is at revision {found}, not {expected}: read it again")
    folder = settings().policies_dir
    path = Path(before.file) if before else folder / f"{name}{NEW_SUFFIX}"
    if not before and path.exists():
        raise Conflict(f"{path.name} exists in the policy folder and holds another policy")
    folder.mkdir(parents=True, exist_ok=True)
    _replace(path, source.encode("utf-8"))
    return before, path


@contextmanager
def undone_on_error(name: str) -> Iterator[None]:
    """Put the file of policy ``name`` back as it was (or remove it) when the block raises:
    the block writes the file and commits the transaction that audits it, and a change
    whose transaction failed must not stay in force unaudited. Call under `folder_lock`."""
    found = current(name)
    path = Path(found.file) if found else settings().policies_dir / f"{name}{NEW_SUFFIX}"
    kept = path.read_bytes() if path.exists() else None
    try:
        yield
    except BaseException:
        if kept is None:
            path.unlink(missing_ok=True)
        elif not path.exists() or path.read_bytes() != kept:
            _replace(path, kept)
        raise


def _replace(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".policy-", suffix=".tmp")
    try:
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)  # readers see the old text or the new, never half
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def delete(name: str, *, expected: str | None) -> Loaded:
    before = current(name)
    if before is None:
        raise NotFound(f"policy `{name}` does not exist")
    if expected is not None and before.revision != expected:
        raise Conflict(f"policy `{name}` is at revision {before.revision}, not {expected}")
    Path(before.file).unlink()
    return before
