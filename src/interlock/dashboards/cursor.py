"""Opaque keyset cursors: the sort key of a page's last row, tagged with the listing's name.

A cursor is base64url of a JSON list ``[listing, key...]``; decoding checks the listing, so a
cursor of one listing is refused by another with a message instead of a wrong page.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime


def encode(listing: str, *key: str) -> str:
    raw = json.dumps([listing, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(listing: str, cursor: str, size: int) -> list[str]:
    """The ``size`` parts of the key; ValueError (an HTTP 400) for anything we did not issue."""
    problem = (f"bad cursor {cursor[:80]!r}: pass the `next_cursor` of the previous page of "
               f"/dashboards/{listing}, with the same filters")
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:  # binascii.Error, JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(problem) from None
    if (not isinstance(parts, list) or len(parts) != size + 1 or parts[0] != listing
            or not all(isinstance(p, str) for p in parts)):
        raise ValueError(problem)
    return parts[1:]


def decode_time(text: str, cursor: str, listing: str) -> datetime:
    """A timestamp part of a cursor: ISO 8601 with a zone, as we issue them."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise ValueError(f"bad cursor {cursor[:80]!r}: pass the `next_cursor` of the previous "
                         f"page of /dashboards/{listing}")
    return at
