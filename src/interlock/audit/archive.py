"""Archiving the audit trail by segment: the oldest records go to a file, a signed anchor
stays in their place.

`archive(before=..., output=...)` takes the longest run of records after the newest anchor
that were all written before ``before``, and:

1. refuses unless the whole chain verifies now (an archive never launders an edit);
2. writes them to ``output`` as JSON Lines in the `interlock audit export` format (each
   with its `prev_hash` and `hash`), checking that each links to the one before, and
   fsyncs the file and its folder;
3. only then, in one transaction, deletes exactly those records and inserts the anchor
   (`interlock.audit.anchors`): bounds, the hash they chain from, the last hash, the file's
   SHA-256, signed with the audit key.

Appends go on meanwhile (the chain's head is not locked): they chain from the head, which
the archive leaves alone. A failure before step 3 deletes nothing and removes the partial
file; a failure in step 3 deletes nothing and keeps the file, which is then a plain export.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from interlock import clock
from interlock.audit import anchors
from interlock.audit.query import AuditRecordPublic
from interlock.errors import InterlockError
from interlock.store import audit, audit_seal
from interlock.store.base import rowcount
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord
from interlock.store.tables.anchors import AuditAnchor

WRITE_BATCH = 5000  # records read per transaction while writing the file


class ArchiveError(InterlockError):
    """The archive could not be made; nothing was deleted."""


@dataclass(frozen=True)
class ArchiveResult:
    records: int                # archived (0: nothing was written before the date)
    first_seq: int | None = None
    last_seq: int | None = None
    file: Path | None = None
    file_sha256: str | None = None
    anchor_id: int | None = None


def archive(*, before: datetime, output: Path, actor: str) -> ArchiveResult:
    """Archive the records written before ``before`` to ``output`` (a new file)."""
    key = anchors.audit_key()  # before anything else: without it no anchor can be signed
    before = (before if before.tzinfo else before.replace(tzinfo=UTC)).astimezone(UTC)
    if before > clock.now():
        raise ValueError(f"--before {before.isoformat()} is in the future; the archive takes "
                         "records written before a past date")
    _check_output(output)
    audit_seal.seal_all()  # records a dead process left pending join the chain first
    with session_scope() as session:
        checked = anchors.verify(session)
        if not checked.verdict.ok:
            raise ArchiveError(f"the audit chain is broken at record {checked.verdict.broken_at}"
                               f" ({checked.verdict.reason}); nothing was archived: an "
                               "archive must not vouch for an altered chain")
        start = _start(session)
        end = _segment_end(session, start[0], before)
    if end <= start[0]:
        return ArchiveResult(records=0)
    digest, last_hash = _write(output, start, end)
    try:
        anchor_id = _replace(start, end, last_hash, digest, output=output, before=before,
                             actor=actor, key=key)
    except IntegrityError:
        raise ArchiveError(f"another archive of the records from {start[0] + 1} committed "
                           f"first; nothing was deleted, and {output} is only an export") from None
    return ArchiveResult(records=end - start[0], first_seq=start[0] + 1, last_seq=end,
                         file=output, file_sha256=digest, anchor_id=anchor_id)


def _check_output(output: Path) -> None:
    if output.exists():
        raise ValueError(f"{output} exists; the archive writes a new file (nothing archived)")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"folder {parent} does not exist (nothing archived)")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write in {parent} (nothing archived)")


def _start(session: Session) -> tuple[int, str]:
    """The last archived record's seq and hash: where the segment chains from."""
    newest = anchors.latest(session)
    return (newest.last_seq, newest.hash) if newest else (0, audit.GENESIS)


def _segment_end(session: Session, last: int, before: datetime) -> int:
    """The last seq of the longest run of records after ``last`` all written before
    ``before`` (a prefix: the chain is cut in one place)."""
    first_kept = session.scalar(select(AuditRecord.seq).where(
        AuditRecord.seq > last, AuditRecord.at >= before).order_by(AuditRecord.seq).limit(1))
    if first_kept is not None:
        return first_kept - 1
    return session.scalar(select(func.max(AuditRecord.seq))) or last


def _write(output: Path, start: tuple[int, str], end: int) -> tuple[str, str]:
    """Write the segment, fsynced; returns the file's SHA-256 and the last record's hash.
    On any failure the partial file is removed and the error says so."""
    digest = hashlib.sha256()
    try:
        with output.open("xb") as sink:
            prev = _write_lines(sink, digest.update, start, end)
            sink.flush()
            os.fsync(sink.fileno())
        _fsync_folder(output)
    except BaseException as exc:
        output.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ValueError(f"cannot write {output}: {exc.strerror or exc} "
                             "(nothing archived)") from None
        raise
    return digest.hexdigest(), prev


def _write_lines(sink: BinaryIO, digest: Callable[[bytes], object], start: tuple[int, str],
                 end: int) -> str:
    expected, prev = start[0] + 1, start[1]
    for row in _records(start[0], end):
        if row.seq != expected or row.prev_hash != prev:
            raise ArchiveError(f"record {expected} changed while it was archived; nothing "
                               "was deleted, try again")
        line = (row.model_dump_json() + "\n").encode()
        sink.write(line)
        digest(line)
        expected, prev = expected + 1, row.hash
    if expected != end + 1:
        raise ArchiveError(f"record {expected} vanished while it was archived; nothing was "
                           "deleted")
    return prev


def _records(last: int, end: int) -> Iterator[AuditRecordPublic]:
    """The records after ``last`` up to ``end``, a batch per transaction (plain rows, no ORM
    objects: the same public model the export writes)."""
    columns = [getattr(AuditRecord, name) for name in AuditRecordPublic.model_fields]
    while last < end:
        with session_scope() as session:
            rows = session.execute(select(*columns).where(
                AuditRecord.seq > last, AuditRecord.seq <= end)
                .order_by(AuditRecord.seq).limit(WRITE_BATCH)).mappings().all()
        if not rows:
            return
        for row in rows:
            yield AuditRecordPublic.model_validate(dict(row))
        last = rows[-1]["seq"]


def _fsync_folder(output: Path) -> None:
    fd = os.open(output.parent if str(output.parent) else ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(start: tuple[int, str], end: int, last_hash: str, file_sha256: str, *,
             output: Path, before: datetime, actor: str, key: str) -> int:
    """Delete the archived records and insert their signed anchor, in one transaction."""
    with session_scope() as session:
        stored = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == end))
        if stored != last_hash:
            raise ArchiveError(f"record {end} changed after it was written to {output}; "
                               "nothing was deleted")
        deleted = rowcount(session.execute(delete(AuditRecord).where(
            AuditRecord.seq > start[0], AuditRecord.seq <= end)))
        if deleted != end - start[0]:
            raise ArchiveError(f"expected to delete {end - start[0]} record(s), found "
                               f"{deleted}; nothing was deleted")
        fields = anchors.AnchorFields(
            first_seq=start[0] + 1, last_seq=end, count=end - start[0], prev_hash=start[1],
            hash=last_hash, file_sha256=file_sha256, before=before, created_at=clock.now())
        anchor = AuditAnchor(first_seq=fields.first_seq, last_seq=fields.last_seq,
                             count=fields.count, prev_hash=fields.prev_hash, hash=fields.hash,
                             file_sha256=fields.file_sha256, file_name=output.name[:300],
                             before=fields.before, created_by=actor,
                             created_at=fields.created_at, signature=fields.sign(key))
        session.add(anchor)
        session.flush()
        return anchor.id
