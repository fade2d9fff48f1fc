"""The two files the adapter and the runner exchange: what to run, and how it ended.

Plain dataclasses over JSON, with no third-party imports, so the runner starts fast.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from interlock_script.layout import write_atomically, write_reserved


@dataclass(frozen=True)
class RunSpec:
    """spec.json: written by `submit`, read once by the runner."""

    argv: list[str]
    cwd: str
    run_id: str
    node_id: str
    attempt: int
    traceparent: str
    env: dict[str, str] = field(default_factory=dict)
    inherit_env: list[str] = field(default_factory=list)
    timeout_s: float | None = None
    log_max_bytes: int = 1_000_000
    run_as: str | None = None       # the OS user the command runs as; None: the runner's own

    def save(self, path: Path) -> None:
        write_atomically(path, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> RunSpec:
        return cls(**_known_fields(cls, json.loads(path.read_text(encoding="utf-8"))))


@dataclass(frozen=True)
class RunResult:
    """result.json: written once by the runner (or by `cancel` when the runner is gone)."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    cancelled: bool
    started_at: str | None
    finished_at: str
    error: str | None = None        # why the command could not be started at all
    log_truncated_bytes: int = 0    # bytes dropped from the middle of the log
    log_lost_bytes: int = 0         # bytes of output not written: the attempts disk was full

    def save(self, path: Path) -> None:
        write_reserved(path, json.dumps(asdict(self), indent=2))  # the launcher kept room

    @classmethod
    def load(cls, path: Path) -> RunResult | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**_known_fields(cls, data))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    # Tolerate keys a newer runner may add, so old workers can still read its files.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
