"""Opaque keyset cursors, one codec for every paged listing (runs, audit, dashboards, lineage).

A cursor is base64url (unpadded) of a JSON list ``[listing, key...]``: the listing's name,
then the sort key of the page's last row. Decoding checks the listing and the type of each
key part, so a cursor of one listing is refused by another, and anything we did not issue
(garbage, a huge or deeply nested payload, NaN, a NUL byte, an out-of-range number, a naive
time) raises :class:`BadCursor` (an HTTP 400) before it reaches a query.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

MAX_LENGTH = 1000               # characters; longer is not one of ours
_INT_RANGE = range(-2**63, 2**63)  # a BIGINT: larger would fail in the database, not here
KeyPart = str | int | datetime


class BadCursor(ValueError):
    """A cursor this API did not issue (a ValueError: the API answers 400)."""


def encode(listing: str, *key: KeyPart) -> str:
    parts = [listing, *(p.isoformat() if isinstance(p, datetime) else p for p in key)]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(listing: str, cursor: object, *kinds: type[KeyPart]) -> tuple[Any, ...]:
    """The key parts of ``cursor``, of the types ``kinds``; BadCursor for anything else."""
    problem = BadCursor(f"bad cursor {str(cursor)[:80]!r}: pass the `next_cursor` of the "
                        f"previous page of /{listing}, with the same filters")
    parts = _parts(cursor)
    if parts is None or len(parts) != len(kinds) + 1 or parts[0] != listing:
        raise problem
    key = tuple(_part(kind, value) for kind, value in zip(kinds, parts[1:], strict=True))
    if any(value is None for value in key):
        raise problem
    return key


def _parts(cursor: object) -> list[Any] | None:
    if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_LENGTH:
        return None
    try:
        raw = base64.b64decode(cursor.rstrip("=") + "=" * (-len(cursor.rstrip("=")) % 4),
                               altchars=b"-_", validate=True)
        parts = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, binascii.Error, RecursionError):  # JSON and Unicode errors included
        return None
    return parts if isinstance(parts, list) else None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _part(kind: type[KeyPart], value: object) -> KeyPart | None:
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and value in _INT_RANGE
        return value if ok else None  # type: ignore[return-value]
    if not isinstance(value, str) or any(ord(c) < 32 for c in value):
        return None  # PostgreSQL refuses NUL; no key of ours holds control characters
    if kind is str:
        return value
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None  # cursors we issue always carry a zone
