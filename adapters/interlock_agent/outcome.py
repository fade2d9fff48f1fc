"""How an agent node ends: what the loop returns and the session keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WAIT = "wait"  # a tool is still running: hand the worker back until the next poll


@dataclass
class Outcome:
    state: str                          # succeeded | failed
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "outputs": self.outputs, "error": self.error}
