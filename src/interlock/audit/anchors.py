"""Signed anchors of archived audit segments, and the chain's verdict from them.

An anchor says "records `first_seq`..`last_seq`, chained from `prev_hash` and ending at
`hash`, were archived to a file whose SHA-256 is `file_sha256`". It is signed with the
audit key (`INTERLOCK_AUDIT_KEY`, or the file `INTERLOCK_AUDIT_KEY_FILE` names) by the same
HMAC-SHA256 as signed pushes (`interlock.adapters.signing`, the anchor's creation time as
the timestamp). `verify` checks every anchor's signature and that anchors follow each
other from record 1, then recomputes the kept chain from the newest anchor's hash: the
first kept record must chain from it, so editing, deleting or reordering a kept record is
still found at that record, and a forged or edited anchor is found at the anchor.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from interlock.adapters.signing import MIN_SECRET_BYTES, signature
from interlock.config.env import settings
from interlock.errors import InterlockError
from interlock.store import audit
from interlock.store.tables.anchors import AuditAnchor

KEY_VARIABLE = "INTERLOCK_AUDIT_KEY"
KEY_FILE_VARIABLE = "INTERLOCK_AUDIT_KEY_FILE"
POSTGRESQL = "postgresql"
SNAPSHOT = "REPEATABLE READ"  # one snapshot for a whole verify


class AuditKeyError(InterlockError):
    """The audit key is missing, unreadable or too short."""


def audit_key() -> str:
    """The key that signs anchors; raises AuditKeyError saying what to set."""
    s = settings()
    key = s.audit_key
    if key is None and s.audit_key_file is not None:
        try:
            key = s.audit_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AuditKeyError(f"cannot read the audit key file {s.audit_key_file} "
                                f"({KEY_FILE_VARIABLE}): {exc.strerror or exc}") from None
    if not key:
        raise AuditKeyError(f"no audit key: set {KEY_VARIABLE}, or {KEY_FILE_VARIABLE} to a "
                            "file holding it (the same key on every replica that verifies)")
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise AuditKeyError(f"the audit key is shorter than {MIN_SECRET_BYTES} bytes; use a "
                            "long random one, e.g. `openssl rand -hex 32`")
    return key


@dataclass(frozen=True)
class AnchorFields:
    """What an anchor signs."""

    first_seq: int
    last_seq: int
    count: int
    prev_hash: str
    hash: str
    file_sha256: str
    before: datetime
    created_at: datetime

    @classmethod
    def of(cls, row: AuditAnchor) -> AnchorFields:
        return cls(first_seq=row.first_seq, last_seq=row.last_seq, count=row.count,
                   prev_hash=row.prev_hash, hash=row.hash, file_sha256=row.file_sha256,
                   before=row.before, created_at=row.created_at)

    def body(self) -> bytes:
        return json.dumps([self.first_seq, self.last_seq, self.count, self.prev_hash,
                           self.hash, self.file_sha256, _utc(self.before),
                           _utc(self.created_at)],
                          separators=(",", ":")).encode()

    def timestamp(self) -> str:
        return str(int(self.created_at.timestamp()))

    def sign(self, key: str) -> str:
        return signature(key, self.timestamp(), self.body())


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def latest(session: Session) -> AuditAnchor | None:
    return session.scalar(select(AuditAnchor).order_by(AuditAnchor.last_seq.desc()).limit(1))


def _problem(anchor: AuditAnchor, key: str, last: int, prev: str) -> str | None:
    """Why ``anchor`` cannot vouch for its segment after record ``last`` (hash ``prev``)."""
    fields = AnchorFields.of(anchor)
    name = f"the anchor of archived records {anchor.first_seq}..{anchor.last_seq}"
    if not hmac.compare_digest(fields.sign(key), anchor.signature):
        return f"{name} does not match its signature: it was edited or forged"
    if anchor.first_seq != last + 1 or anchor.prev_hash != prev:
        return f"{name} does not follow record {last} (an anchor or a segment is missing)"
    if anchor.count != anchor.last_seq - anchor.first_seq + 1:
        return f"{name} counts {anchor.count} record(s)"
    return None


@dataclass(frozen=True)
class AnchoredVerdict:
    verdict: audit.Verdict
    archived: int      # records vouched for by anchors
    anchors: int


def verify(session: Session) -> AnchoredVerdict:
    """Check every anchor, then the kept chain from the newest one. Call it first in its
    transaction: on PostgreSQL the whole walk reads one snapshot, so records appended
    meanwhile (appends never wait for a verify) are not taken for a head out of step."""
    if session.get_bind().dialect.name == POSTGRESQL:
        session.connection(execution_options={"isolation_level": SNAPSHOT})
    anchors = list(session.scalars(select(AuditAnchor).order_by(AuditAnchor.first_seq)))
    last, prev = 0, audit.GENESIS
    if anchors:
        try:
            key = audit_key()
        except AuditKeyError as exc:
            return AnchoredVerdict(audit.Verdict(False, 0, anchors[0].last_seq + 1,
                                                 f"archive anchors cannot be checked: {exc}"),
                                   0, len(anchors))
    for anchor in anchors:
        if (problem := _problem(anchor, key, last, prev)) is not None:
            return AnchoredVerdict(audit.Verdict(False, 0, anchor.last_seq + 1, problem),
                                   last, len(anchors))
        last, prev = anchor.last_seq, anchor.hash
    return AnchoredVerdict(audit.verify(session, after=(last, prev)), last, len(anchors))
