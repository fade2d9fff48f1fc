"""Secrets for a local process: only through its environment, never on disk or in argv.

A command line is readable by every user of the host (`ps`, /proc/<pid>/cmdline) and
spec.json sits in the attempt folder; so a secret may only be an `env:` value. Those
values travel to the runner through a pipe (`Sealed.encode`, :func:`receive`), and the
runner masks them, in every encoded form, in the log and the outputs it writes.

Standard library only at import: the runner starts on every attempt. The masker (the SDK's)
is imported only when there is something to mask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any

MAX_SEALED_BYTES = 1 << 20  # what the runner reads from its pipe, at most


@dataclass(frozen=True)
class Sealed:
    """What only the runner's memory holds: secret env values and every value to mask."""

    env: dict[str, str] = field(default_factory=dict, repr=False)
    mask: tuple[str, ...] = field(default=(), repr=False)

    def encode(self) -> bytes:
        return json.dumps({"env": self.env, "mask": list(self.mask)}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Sealed:
        if not data.strip():
            return cls()
        raw = json.loads(data)
        return cls(env={str(k): str(v) for k, v in raw.get("env", {}).items()},
                   mask=tuple(str(v) for v in raw.get("mask", ())))

    def masker(self) -> Any:
        """The SDK's Masker for these values, or None when there are none."""
        if not self.mask:
            return None
        from interlock.adapters.masking import Masker
        return Masker(self.mask)


def receive(stream: IO[bytes]) -> Sealed:
    """The runner's side: read the pipe to its end (empty when nothing was sealed)."""
    data = stream.read(MAX_SEALED_BYTES + 1)
    if len(data) > MAX_SEALED_BYTES:
        raise ValueError(f"sealed input over {MAX_SEALED_BYTES} bytes")
    return Sealed.decode(data)
