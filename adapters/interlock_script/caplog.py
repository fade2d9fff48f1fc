"""A log file that keeps the first and the last half of a stream within a byte cap.

The file is only ever appended to, so a reader's byte offset stays valid: the head
is written as it arrives; the rest is held in a ring buffer and written on close,
after a `... [N bytes truncated] ...` line when the stream overflowed the cap.

A full disk (ENOSPC, EDQUOT) loses the bytes it refuses, counted in `lost`, and nothing
else: the stream is still read, so the command is never blocked on a full pipe.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def truncation_marker(dropped: int) -> bytes:
    return f"... [{dropped} bytes truncated] ...\n".encode()


class CappedLog:
    """``masker`` (the SDK's Masker): secrets never reach the file, in any form; a tail that
    could begin one waits for the next chunk."""

    def __init__(self, path: Path, max_bytes: int, masker: Any = None):
        self._stream = None
        if masker is not None:
            from interlock.adapters.masking import StreamMasker
            self._stream = StreamMasker(masker)
        self._file = path.open("ab", buffering=0)  # each write reaches the disk, or is lost
        self._head_room = max_bytes // 2
        self._tail_cap = max_bytes - self._head_room
        self._tail = bytearray()
        self._ends_with_newline = True
        self._dropped = 0
        self._lost = 0
        self._closed = False
        # The pump thread writes while the main thread may close on its own schedule.
        self._lock = threading.Lock()

    @property
    def dropped(self) -> int:
        return self._dropped

    @property
    def lost(self) -> int:
        return self._lost

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._closed:
                return
            self._append(self._stream.feed(data) if self._stream else data)

    def _append(self, data: bytes) -> None:
        head, rest = data[:self._head_room], data[self._head_room:]
        if head:
            self._write_now(head)
            self._head_room -= len(head)
        self._tail += rest
        overflow = len(self._tail) - self._tail_cap
        if overflow > 0:
            del self._tail[:overflow]
            self._dropped += overflow

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._stream:
                self._append(self._stream.flush())
            self._closed = True
            if self._dropped:
                newline = b"" if self._ends_with_newline else b"\n"
                self._put(newline + truncation_marker(self._dropped))
            self._put(bytes(self._tail))
            self._file.close()

    def _write_now(self, data: bytes) -> None:
        self._put(data)  # unbuffered: readers (`logs`) see the head live
        self._ends_with_newline = data.endswith(b"\n")

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._file.fileno(), view):]
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            self._lost += len(view)
