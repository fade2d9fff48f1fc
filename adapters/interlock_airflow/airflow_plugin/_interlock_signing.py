"""Signed pushes (HMAC-SHA256 over `timestamp.body`, as Stripe signs its webhooks).

    X-Interlock-Timestamp: 1764000000
    X-Interlock-Signature: sha256=<hex of HMAC(secret, b"1764000000." + body)>

The timestamp is signed too, and old ones are refused, so a captured event cannot be
replayed later; within the tolerance, the receiver remembers the signatures it accepted
(`interlock.store.signatures`), so it cannot be replayed at all. Secrets shorter than
`MIN_SECRET_BYTES` are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Interlock-Timestamp"
SIGNATURE_HEADER = "X-Interlock-Signature"
SCHEME = "sha256="
TOLERANCE_S = 300.0
MIN_SECRET_BYTES = 16


class BadSignature(Exception):
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Headers that make ``body`` verifiable by ``verify``."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(secret: str, *, timestamp: str | None, given: str | None, body: bytes,
           now: float | None = None) -> None:
    if not timestamp or not given:
        raise BadSignature(f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise BadSignature(f"the shared secret is shorter than {MIN_SECRET_BYTES} bytes")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise BadSignature(f"{TIMESTAMP_HEADER} is not a unix time")
    if not given.isascii() or len(given) != len(SCHEME) + 64:
        raise BadSignature(f"{SIGNATURE_HEADER} is not sha256=<64 hex digits>")
    age = abs((time.time() if now is None else now) - int(timestamp))
    if age > TOLERANCE_S:
        raise BadSignature(f"timestamp is {age:.0f} s away from now (limit {TOLERANCE_S:.0f} s)"
                           "; check the clocks, or this is a replay")
    if not hmac.compare_digest(signature(secret, timestamp, body), given):
        raise BadSignature("signature does not match the body and the shared secret")
