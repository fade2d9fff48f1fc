"""Replay protection for signed pushes: each signature is accepted once.

`claim_signature` inserts the signature (a unique key) in its own transaction; a second
claim of the same one, from this replica or another, fails. Rows older than the signing
tolerance (twice over, for clock skew) are deleted on the way: by then the timestamp check
refuses the pair anyway.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from interlock import clock
from interlock.store.db import session_scope
from interlock.store.tables.signatures import SeenSignature


def claim_signature(signature: str, *, keep_s: float) -> bool:
    """True the first time ``signature`` (any text; its SHA-256 is kept) is claimed within
    ``keep_s`` seconds, else False."""
    now = clock.now()
    try:
        with session_scope() as session:
            session.execute(delete(SeenSignature).where(
                SeenSignature.seen_at < now - timedelta(seconds=2 * keep_s)))
            key = hashlib.sha256(signature.encode()).hexdigest()
            session.add(SeenSignature(signature=key, seen_at=now))
    except IntegrityError:
        return False
    return True
