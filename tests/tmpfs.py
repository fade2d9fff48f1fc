"""A small tmpfs over a folder, and filling it: the attempts disk running out of room.

Mounting needs root (CI is root); elsewhere the test is skipped with the reason."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.workers import kill_leftover_scripts

ENOSPC = 28
BLOCK = 4096


@contextmanager
def mounted(where: Path, size: str) -> Iterator[Path]:
    """``where`` as a tmpfs of ``size`` (e.g. `2m`) for the block; the runners a test left
    in it are stopped before it is unmounted (they would outlive the mount)."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        kill_leftover_scripts(where)
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(where: Path) -> Path:
    """Write a file in ``where`` until the disk refuses (ENOSPC); the file."""
    filler = where / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"x" * BLOCK)
        except OSError as exc:
            assert exc.errno == ENOSPC, exc
    return filler
