"""How a driver process talks to `bench/peers.py`: one ``PEERS {json}`` line per event on
stdout (everything else a driver prints goes to its log).

Events: ``{"event": "window"}`` when the measurement window starts (the parent starts
counting CPU then, and stops after the window's length); ``{"event": "result", ...}``
with the figures (`Result` fields); ``{"event": "note", "text": ...}`` for the report.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

PREFIX = "PEERS "


def emit(event: str, out: TextIO | None = None, **fields: Any) -> None:
    stream = out or sys.__stdout__
    assert stream is not None
    stream.write(PREFIX + json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def parse(line: str) -> dict[str, Any] | None:
    if not line.startswith(PREFIX):
        return None
    return dict(json.loads(line[len(PREFIX):]))


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank on sorted values (the same rule as bench/throughput.py's ``_pct``)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def result(*, runs_in_window: int, duration: float, latencies: list[float],
           started: int, failed: int, **extra: Any) -> None:
    """Emit the figures of one measurement (latencies in seconds, of finished runs)."""
    emit("result", runs_in_window=runs_in_window, duration=duration,
         runs_per_s=runs_in_window / duration, started=started, finished=len(latencies),
         failed=failed,
         p50=percentile(latencies, 50) if latencies else None,
         p99=percentile(latencies, 99) if latencies else None, **extra)
