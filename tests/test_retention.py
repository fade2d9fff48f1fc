"""Retention: `interlock purge` removes what finished long ago (and nothing running), and
`interlock audit archive` moves old audit records to a file behind a signed anchor that
`interlock audit verify` still proves the kept chain from. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import delete, func, select, text, update
from typer.testing import CliRunner

from interlock import clock
from interlock.audit import query as audit_query
from interlock.audit.anchors import AnchorFields
from interlock.cli.main import app as cli
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import retention as ops_retention
from interlock.operations import runs as ops
from interlock.operations.runtime import periodic_jobs
from interlock.states import NodeState, RunState
from interlock.store import audit
from interlock.store import retention as store_retention
from interlock.store.db import engine_for, session_scope
from interlock.store.retention import inside, remove_dirs
from interlock.store.tables import (
    Attempt,
    AuditRecord,
    ExternalRun,
    LaunchClaim,
    NodeRun,
    Run,
    StateEvent,
)
from interlock.store.tables.anchors import AuditAnchor
from interlock.store.tables.lineage import LineageEvent
from tests.helpers import wait_run

QUICK = dedent("""
    id: quick
    namespace: tests.retention
    nodes:
      work: {uses: script, with: {command: "echo done"}}
""").lstrip()
SLOW = QUICK.replace("id: quick", "id: slow").replace('"echo done"', '"sleep 30"')
NOOP = QUICK.replace("id: quick", "id: light").replace(
    'work: {uses: script, with: {command: "echo done"}}', "work: {uses: noop}")
KEY = "k" * 32
OLD = timedelta(days=100)
runner = CliRunner()


def _run(dispatcher: EmbeddedDispatcher, source: str, *, wait: bool = True) -> str:
    flow, _ = ops.register(source, actor="tests")
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                           dispatcher=dispatcher, actor="tests")
    if wait:
        assert wait_run(run_id).state is RunState.SUCCEEDED
    return run_id


def _age(run_id: str) -> None:
    """Make a run look finished (or started) 100 days ago."""
    then = clock.now() - OLD
    with session_scope() as session:
        session.execute(update(Run).where(Run.id == run_id).values(created_at=then,
                                                                   updated_at=then))
        session.execute(update(Run).where(Run.id == run_id, Run.finished_at.is_not(None))
                        .values(finished_at=then))


def _count(model: Any, *where: Any) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def _dirs(run_id: str) -> list[Path]:
    with session_scope() as session:
        handles = session.scalars(select(Attempt.handle).where(Attempt.run_id == run_id)).all()
    return [Path(h["data"]["dir"]) for h in handles if h and h.get("data", {}).get("dir")]


def _foreign(session: Any, external_id: str, *, age: timedelta, state: NodeState) -> None:
    seen = clock.now() - age
    session.add(ExternalRun(system="other/prod", job_id="nightly", external_id=external_id,
                            state=state.value, remote_status=state.value, details={},
                            started_at=seen, ended_at=seen, updated_at=seen))


def _lineage_event(session: Any, key: str, *, age: timedelta) -> None:
    at = clock.now() - age
    session.add(LineageEvent(key=key, kind="run", run_id=None, event_type="COMPLETE",
                             event_time=at, source="openlineage", payload={}, received_at=at))


def test_purge_removes_old_finished_runs_and_leaves_running_work(
        embedded: EmbeddedDispatcher) -> None:
    old, recent = _run(embedded, QUICK), _run(embedded, QUICK)
    running = _run(embedded, SLOW, wait=False)
    deadline = time.monotonic() + 30
    while _count(Attempt, Attempt.run_id == running,
                 Attempt.state == NodeState.RUNNING.value) == 0:
        assert time.monotonic() < deadline, "the slow run never started"
        time.sleep(0.05)
    _age(old)
    _age(running)  # old, but not finished: never touched
    with session_scope() as session:
        _foreign(session, "f-old", age=OLD, state=NodeState.SUCCEEDED)
        _foreign(session, "f-old-running", age=OLD, state=NodeState.RUNNING)
        _foreign(session, "f-new", age=timedelta(days=1), state=NodeState.FAILED)
        _lineage_event(session, "old", age=OLD)
        _lineage_event(session, "new", age=timedelta(days=1))
    old_dirs = _dirs(old)
    assert old_dirs and all(d.is_dir() for d in old_dirs)
    events = _count(StateEvent, StateEvent.run_id == old)
    old_attempts = select(Attempt.id).where(Attempt.run_id == old)
    claims = _count(LaunchClaim, LaunchClaim.key.in_(select(Attempt.key)
                                                     .where(Attempt.run_id == old)))
    ours = _count(ExternalRun, ExternalRun.attempt_id.in_(old_attempts))
    tables = {"runs": _count(Run), "state_events": _count(StateEvent),
              "external_runs": _count(ExternalRun), "lineage_events": _count(LineageEvent)}

    dry = ops_retention.purge(older_than=timedelta(days=90), dry_run=True)
    expected = {"runs": 1, "node_runs": 1, "attempts": 1, "state_events": events,
                "launch_claims": claims, "external_runs": 1 + ours, "lineage_events": 1,
                "attempt_dirs": 1}
    assert dry.table() == expected
    assert tables == {"runs": _count(Run), "state_events": _count(StateEvent),
                      "external_runs": _count(ExternalRun),
                      "lineage_events": _count(LineageEvent)}  # a dry run deletes nothing
    assert all(d.is_dir() for d in old_dirs)

    done = ops_retention.purge(older_than=timedelta(days=90))
    assert done.table() == expected and not done.more
    assert _count(Run, Run.id == old) == 0
    assert _count(StateEvent, StateEvent.run_id == old) == 0
    assert _count(NodeRun, NodeRun.run_id == old) == 0
    assert not any(d.exists() for d in old_dirs)
    assert set(_ids(ExternalRun.external_id)) == {"f-old-running", "f-new"}
    assert _count(LineageEvent, LineageEvent.key == "new") == 1
    assert _count(Run, Run.id == recent) == 1 and all(d.is_dir() for d in _dirs(recent))
    with session_scope() as session:
        assert session.get(Run, running).state == RunState.RUNNING.value  # type: ignore[union-attr]
    assert _count(Attempt, Attempt.run_id == running) == 1
    ops.cancel_run(running, dispatcher=embedded, actor="tests")
    wait_run(running)
    assert ops_retention.purge(older_than=timedelta(days=90)).table()["runs"] == 0


def test_purge_goes_in_batches_and_a_bounded_one_says_more_is_left(
        embedded: EmbeddedDispatcher) -> None:
    runs = [_run(embedded, NOOP) for _ in range(5)]
    for run_id in runs:
        _age(run_id)
    cutoff, folder = clock.now() - timedelta(days=90), settings().attempts_dir
    first = store_retention.purge(cutoff=cutoff, attempts_dir=folder, batch=2, max_batches=2)
    assert (first.table()["runs"], first.more) == (4, True)
    rest = store_retention.purge(cutoff=cutoff, attempts_dir=folder, batch=2)
    assert (rest.table()["runs"], rest.more) == (1, False)
    assert not set(runs) & set(_ids(Run.id))


def _ids(column: Any) -> list[Any]:
    with session_scope() as session:
        return list(session.scalars(select(column)))


def test_the_purge_skips_a_run_another_transaction_holds(
        embedded: EmbeddedDispatcher, store_url: str) -> None:
    """PostgreSQL: a run locked by someone (a retry in progress) is skipped, not waited
    for; the purge takes row locks only, so it finishes while the lock is held."""
    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: a held lock is a held database")
    held, free = _run(embedded, QUICK), _run(embedded, QUICK)
    _age(held)
    _age(free)
    with engine_for().connect() as other:
        other.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": held})
        began = time.monotonic()
        report = ops_retention.purge(older_than=timedelta(days=90))
        assert time.monotonic() - began < 10
        other.rollback()
    assert report.table()["runs"] == 1
    assert _ids(Run.id).count(held) == 1 and free not in _ids(Run.id)


def test_attempt_folders_are_removed_only_inside_the_attempts_folder(
        tmp_path: Path, sqlite_store: str) -> None:
    root = settings().attempts_dir
    (root / "a1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("precious")
    (root / "link").symlink_to(tmp_path / "elsewhere")
    (root / "a2").mkdir()
    (root / "a2-link").symlink_to(root / "a2")
    assert inside(root / "a1", root)
    for outside in (root, tmp_path / "elsewhere", root / ".." / "elsewhere",
                    root / "link", root / "a2-link", Path("relative/a1")):
        assert not inside(outside, root), outside
    removed = remove_dirs([str(root / "a1"), str(root / "link"), str(root / "a2-link"),
                           str(root / ".." / "elsewhere"), str(root), "/etc",
                           str(root / "gone")], root)
    assert removed == 1 and not (root / "a1").exists()
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "precious"
    assert root.is_dir() and (root / "a2").is_dir()


def test_a_handle_pointing_outside_keeps_its_folder(tmp_path: Path,
                                                    embedded: EmbeddedDispatcher) -> None:
    run_id = _run(embedded, QUICK)
    outside = tmp_path / "not-an-attempt"
    outside.mkdir()
    with session_scope() as session:
        attempt = session.scalars(select(Attempt).where(Attempt.run_id == run_id)).one()
        attempt.handle = {**(attempt.handle or {}), "data": {"dir": str(outside)}}
    _age(run_id)
    report = ops_retention.purge(older_than=timedelta(days=90))
    assert (report.table()["runs"], report.table()["attempt_dirs"]) == (1, 0)
    assert outside.is_dir()


def test_purge_command_counts_and_refuses_bad_durations(embedded: EmbeddedDispatcher) -> None:
    _age(_run(embedded, QUICK))
    dry = runner.invoke(cli, ["purge", "--older-than", "90d", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["counts"]["runs"] == 1 and _count(Run) == 1
    for bad in ("ninety days", "0s", "-5d", "99999999d"):
        refused = runner.invoke(cli, ["purge", "--older-than", bad])
        assert refused.exit_code == 2, (bad, refused.output)
        assert "older-than" in refused.output
    assert _count(Run) == 1
    done = runner.invoke(cli, ["purge", "--older-than", "2555d"])
    assert done.exit_code == 0 and _count(Run) == 1  # 7 years: nothing that old
    done = runner.invoke(cli, ["purge", "--older-than", "90d"])
    assert done.exit_code == 0 and "runs" in done.output and _count(Run) == 0


def test_the_reconciler_purges_when_retention_is_set(
        embedded: EmbeddedDispatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = _run(embedded, QUICK)
    _age(run_id)
    idle = EmbeddedDispatcher(jobs=periodic_jobs())  # retention off by default
    time.sleep(0.5)
    idle.close()
    assert _count(Run, Run.id == run_id) == 1
    monkeypatch.setenv("INTERLOCK_RETENTION_DAYS", "90")
    settings.cache_clear()
    assert settings().retention_days == 90
    purging = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        deadline = time.monotonic() + 20
        while _count(Run, Run.id == run_id):
            assert time.monotonic() < deadline, "the retention job never purged the run"
            time.sleep(0.05)
        assert _run(purging, NOOP)  # work goes on beside it
    finally:
        purging.close()


# --- the audit archive -------------------------------------------------------------------

@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch, store_url: str) -> str:
    monkeypatch.setenv("INTERLOCK_AUDIT_KEY", KEY)
    settings.cache_clear()
    return store_url


def _history(dispatcher: EmbeddedDispatcher, runs: int) -> None:
    for _ in range(runs):
        _run(dispatcher, NOOP)


def _archive(tmp_path: Path, name: str, *extra: str) -> Any:
    before = clock.now().isoformat(timespec="microseconds").replace("+00:00", "")
    return runner.invoke(cli, ["audit", "archive", "--before", before, "-o",
                               str(tmp_path / name), *extra])


def test_archive_moves_old_records_behind_a_signed_anchor(
        keyed: str, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    _history(embedded, 2)
    archived = _count(AuditRecord)
    time.sleep(0.01)
    done = _archive(tmp_path, "a1.jsonl", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert (result["first_seq"], result["last_seq"], result["records"]) == \
        (1, archived, archived)
    lines = (tmp_path / "a1.jsonl").read_bytes()
    assert hashlib.sha256(lines).hexdigest() == result["file_sha256"]
    records = [json.loads(line) for line in lines.splitlines()]
    exported = [json.loads(line) for line in ops_export_format(records)]
    assert records == exported and records[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(records, records[1:], strict=False))
    assert _count(AuditRecord) == 0
    with session_scope() as session:
        anchor = session.scalars(select(AuditAnchor)).one()
    assert (anchor.hash, anchor.count, anchor.file_sha256) == \
        (records[-1]["hash"], archived, result["file_sha256"])

    _history(embedded, 1)
    verdict = audit_query.verify()
    assert verdict.ok and verdict.archived == archived and verdict.anchors == 1
    assert verdict.checked == _count(AuditRecord) > 0
    shown = runner.invoke(cli, ["audit", "verify"])
    assert shown.exit_code == 0 and f"{archived} archived" in shown.output

    time.sleep(0.01)
    again = _archive(tmp_path, "a2.jsonl", "--json")  # a second segment chains on
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["first_seq"] == archived + 1
    _history(embedded, 1)
    verdict = audit_query.verify()
    assert verdict.ok and verdict.anchors == 2 and verdict.checked == _count(AuditRecord)


def ops_export_format(records: list[dict[str, Any]]) -> list[str]:
    """The lines `interlock audit export` writes for the same records."""
    return [audit_query.AuditRecordPublic.model_validate(r).model_dump_json() for r in records]


def _archived_once(embedded: EmbeddedDispatcher, tmp_path: Path) -> int:
    _history(embedded, 2)
    time.sleep(0.01)
    assert _archive(tmp_path, "a.jsonl").exit_code == 0
    _history(embedded, 2)
    with session_scope() as session:
        return session.scalar(select(func.min(AuditRecord.seq))) or 0


def test_an_edit_in_the_kept_part_is_still_found(
        keyed: str, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    first_kept = _archived_once(embedded, tmp_path)
    assert audit_query.verify().ok
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == first_kept + 2)
                        .values(actor="mallory"))
    verdict = audit_query.verify()
    assert (verdict.ok, verdict.broken_at) == (False, first_kept + 2)
    shown = runner.invoke(cli, ["audit", "verify"])
    assert shown.exit_code == 1 and f"BROKEN at record {first_kept + 2}" in shown.output


def test_the_first_kept_record_must_chain_from_the_anchor(
        keyed: str, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    first_kept = _archived_once(embedded, tmp_path)
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == first_kept)
                        .values(prev_hash="f" * 64))
    assert audit_query.verify().broken_at == first_kept
    with session_scope() as session:  # restored
        anchor = session.scalars(select(AuditAnchor)).one()
        session.execute(update(AuditRecord).where(AuditRecord.seq == first_kept)
                        .values(prev_hash=anchor.hash))
    assert audit_query.verify().ok
    with session_scope() as session:  # then deleted outright
        session.execute(delete(AuditRecord).where(AuditRecord.seq == first_kept))
    verdict = audit_query.verify()
    assert (verdict.ok, verdict.broken_at) == (False, first_kept)


def test_an_edited_forged_or_missing_anchor_is_found(
        keyed: str, embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    first_kept = _archived_once(embedded, tmp_path)
    with session_scope() as session:
        anchor = session.scalars(select(AuditAnchor)).one()
        original = (anchor.count, anchor.signature)
        anchor.count += 1  # edited: the signature no longer matches
    verdict = audit_query.verify()
    assert not verdict.ok and "signature" in (verdict.reason or "")
    assert verdict.broken_at == first_kept

    forged = AnchorFields(first_seq=1, last_seq=anchor.last_seq, count=anchor.last_seq,
                          prev_hash=anchor.prev_hash, hash=anchor.hash,
                          file_sha256="0" * 64, before=anchor.before,
                          created_at=anchor.created_at)
    with session_scope() as session:  # re-signed with another key: a forgery
        session.execute(update(AuditAnchor).values(count=original[0], file_sha256="0" * 64,
                                                   signature=forged.sign("x" * 32)))
    assert "signature" in (audit_query.verify().reason or "")
    with session_scope() as session:  # back as it was: the chain is whole again
        session.execute(update(AuditAnchor).values(
            count=original[0], file_sha256=anchor.file_sha256, signature=original[1]))
    assert audit_query.verify().ok
    with session_scope() as session:
        session.execute(delete(AuditAnchor))
    verdict = audit_query.verify()
    assert (verdict.ok, verdict.broken_at) == (False, 1)  # records 1.. are simply missing


def test_archive_refuses_bad_input_and_loses_nothing(
        store_url: str, embedded: EmbeddedDispatcher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _history(embedded, 1)
    records = _count(AuditRecord)
    no_key = _archive(tmp_path, "a.jsonl")
    assert no_key.exit_code == 1 and "INTERLOCK_AUDIT_KEY" in no_key.output
    monkeypatch.setenv("INTERLOCK_AUDIT_KEY", KEY)
    settings.cache_clear()
    bad_date = runner.invoke(cli, ["audit", "archive", "--before", "last tuesday",
                                   "-o", str(tmp_path / "a.jsonl")])
    assert bad_date.exit_code == 2 and "--before" in bad_date.output
    (tmp_path / "taken.jsonl").write_text("mine")
    taken = _archive(tmp_path, "taken.jsonl")
    assert taken.exit_code == 2 and "exists" in taken.output
    assert (tmp_path / "taken.jsonl").read_text() == "mine"
    missing = _archive(tmp_path, "no/such/folder.jsonl")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    unwritable = _archive(Path("/proc"), "interlock-audit.jsonl")  # refused even to root
    assert unwritable.exit_code == 2 and "cannot write" in unwritable.output
    future = runner.invoke(cli, ["audit", "archive", "--before", "2999-01-01",
                                 "-o", str(tmp_path / "f.jsonl")])
    assert future.exit_code == 2 and "future" in future.output
    assert _count(AuditRecord) == records and _count(AuditAnchor) == 0
    assert audit_query.verify().ok


def test_archive_refuses_a_broken_chain(keyed: str, embedded: EmbeddedDispatcher,
                                        tmp_path: Path) -> None:
    _history(embedded, 1)
    with session_scope() as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2)
                        .values(target="runs/elsewhere"))
    refused = _archive(tmp_path, "a.jsonl")
    assert refused.exit_code == 1 and "broken at record 2" in refused.output
    assert not (tmp_path / "a.jsonl").exists() and _count(AuditAnchor) == 0
