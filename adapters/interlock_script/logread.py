"""Page through an attempt's log by byte offset."""

from __future__ import annotations

from interlock.adapters import LogChunk
from interlock.adapters.paths import open_inside
from interlock_script.layout import AttemptPaths
from interlock_script.records import RunResult
from interlock_script.status import runner_status

CHUNK_BYTES = 64 * 1024


def read_chunk(paths: AttemptPaths, offset: int, *, local: bool) -> LogChunk:
    """``local``: the runner is on this host, so its pid tells whether it is gone."""
    # Decide "finished" before reading: the runner completes the log before its result.
    result = RunResult.load(paths.result)
    settled = result is not None or (local and runner_status(paths).gone)
    data, size = _read(paths, offset)
    at_end = offset + len(data) >= size
    if settled and at_end:
        next_cursor = None
    else:
        data = data[:utf8_boundary(data)]  # never split a character across two chunks
        next_cursor = str(offset + len(data))
    truncated = result is not None and result.log_truncated_bytes > 0
    return LogChunk(text=data.decode("utf-8", errors="replace"), cursor=next_cursor,
                    truncated=truncated)


def _read(attempt: AttemptPaths, offset: int) -> tuple[bytes, int]:
    """Only a log that resolves inside the attempt's directory is read (Rejected else)."""
    try:
        with open_inside(attempt.dir, attempt.log, "log file") as f:
            size = f.seek(0, 2)
            f.seek(offset)
            return f.read(CHUNK_BYTES), size
    except FileNotFoundError:
        return b"", 0


def utf8_boundary(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        lead = data[-back]
        if lead & 0xC0 != 0x80:  # not a continuation byte: where the last character starts
            return len(data) if back >= _sequence_length(lead) else len(data) - back
    return len(data)  # no lead byte near the end: not UTF-8, pass it on as it is


def _sequence_length(lead: int) -> int:
    if lead < 0x80:
        return 1
    if lead >= 0xF0:
        return 4
    return 3 if lead >= 0xE0 else 2
