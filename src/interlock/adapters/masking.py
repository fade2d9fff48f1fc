"""Masking secret values wherever text leaves a process: logs, errors, outputs.

A secret leaks in more shapes than its own: a script that base64-encodes a password for a
header, a URL that carries it percent-encoded, a JSON document that escapes it. Airflow's
masker matches the raw value only (apache/airflow#36688); this one matches every form below.

Standard library only: the script runner imports it, and it must start fast.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MASK_BYTES = MASK.encode()
# Shorter values would mask ordinary words all over a log, and say little to a reader.
MIN_MASKED_CHARS = 4


def forms(secret: str) -> set[str]:
    """The secret as a log could show it: raw, base64 (standard and URL-safe, with or
    without padding), percent-encoded (path and form style), escaped inside JSON, and
    escaped inside XML or HTML (a robot's output.xml)."""
    raw = secret.encode()
    found = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1],
             html.escape(secret), html.escape(secret, quote=False)}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        found |= {encoded, encoded.rstrip("=")}
    return {f for f in found if len(f) >= MIN_MASKED_CHARS}


class Masker:
    """Replaces every form of every secret by `***`, in text or bytes."""

    def __init__(self, secrets: Iterable[str]):
        # Longest first: at each position the alternation takes the longest form that fits,
        # so a form that contains another is replaced whole.
        self.patterns = sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True)
        self._byte_patterns = [p.encode() for p in self.patterns]
        self._text = re.compile("|".join(map(re.escape, self.patterns))) if self else None
        self.bytes_regex = (re.compile(b"|".join(map(re.escape, self._byte_patterns)))
                            if self else None)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    @property
    def longest(self) -> int:
        """Bytes a streaming reader must hold back so no form is split across chunks."""
        return max((len(p) for p in self._byte_patterns), default=0)

    def text(self, value: str) -> str:
        return self._text.sub(MASK, value) if self._text else value

    def data(self, value: bytes) -> bytes:
        return self.bytes_regex.sub(MASK_BYTES, value) if self.bytes_regex else value

    def deep(self, value: Any) -> Any:
        """Every string inside dicts and lists (keys too), masked; other values kept."""
        if not self.patterns:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.deep(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value


class StreamMasker:
    """Masks a byte stream written in arbitrary chunks: the tail that could begin a secret
    is held back until the next chunk (or `flush`) shows whether it does."""

    def __init__(self, masker: Masker):
        self.masker = masker
        self._pending = b""

    def feed(self, chunk: bytes) -> bytes:
        regex = self.masker.bytes_regex
        if regex is None:
            return chunk
        data = self._pending + chunk
        # A match starting before `limit` is whole (a form is at most `longest` bytes);
        # one that starts later, or ends with the data (a longer form may follow), waits.
        limit = len(data) - (self.masker.longest - 1)
        out, pos, cut = [], 0, max(limit, 0)
        for match in regex.finditer(data):
            if match.start() >= limit or match.end() == len(data):
                cut = match.start()
                break
            out += [data[pos:match.start()], MASK_BYTES]
            pos = match.end()
        cut = max(cut, pos)
        out.append(data[pos:cut])
        self._pending = data[cut:]
        return b"".join(out)

    def flush(self) -> bytes:
        rest, self._pending = self.masker.data(self._pending), b""
        return rest
