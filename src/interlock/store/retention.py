"""Retention: purging what finished long ago, in short batches that never block running work.

`purge(cutoff=...)` removes, oldest first:

- runs in a finished state (`RUN_TERMINAL`) that finished before the cutoff and owe no
  outbox work, with their node runs, attempts, state events, launch claims and the external
  runs of their attempts, `BATCH` runs per transaction; each batch locks only its own run
  rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so a retry or a cancel racing the purge
  either waits for the batch and finds the run gone, or wins and the purge skips the run;
- after each batch commits, the attempts' folders (`handle.data.dir`), only when they
  resolve inside the attempts folder and are not symbolic links;
- foreign external runs (not Interlock's attempts) that finished and were last seen before
  the cutoff;
- raw OpenLineage events received before the cutoff (the lineage graph and the dataset
  history stay).

No table lock is taken and every transaction is short, so workers and the API go on.
The audit trail is never purged: it is archived by segment (`interlock.audit.archive`).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, exists, func, select, tuple_
from sqlalchemy.orm import Session

from interlock.states import NODE_TERMINAL, RUN_TERMINAL
from interlock.store.base import rowcount
from interlock.store.db import session_scope
from interlock.store.tables import (
    ATTEMPTS,
    NODE_RUNS,
    RUNS,
    Attempt,
    ExternalRun,
    LaunchClaim,
    NodeRun,
    Outbox,
    Run,
    StateEvent,
)
from interlock.store.tables.lineage import EVENTS as LINEAGE_EVENTS
from interlock.store.tables.lineage import LineageEvent

log = logging.getLogger(__name__)
BATCH = 500  # runs (or rows of the other tables) per transaction
ATTEMPT_DIRS = "attempt_dirs"  # the report's key for attempt folders removed
STATE_EVENTS = StateEvent.__tablename__
EXTERNAL_RUNS = ExternalRun.__tablename__
LAUNCH_CLAIMS = LaunchClaim.__tablename__
# The report's keys, in the order they are shown.
KEYS = (RUNS.name, NODE_RUNS.name, ATTEMPTS.name, STATE_EVENTS, LAUNCH_CLAIMS, EXTERNAL_RUNS,
        LINEAGE_EVENTS.name, ATTEMPT_DIRS)
_RUN_DONE = [s.value for s in RUN_TERMINAL]
_NODE_DONE = [s.value for s in NODE_TERMINAL]


@dataclass
class PurgeReport:
    """What a purge removed (or, dry, would remove): rows per table and attempt folders."""

    cutoff: datetime
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    more: bool = False  # stopped at `max_batches` with work left

    def table(self) -> dict[str, int]:
        return {key: self.counts[key] for key in KEYS}


def purge(*, cutoff: datetime, attempts_dir: Path, dry_run: bool = False, batch: int = BATCH,
          max_batches: int | None = None) -> PurgeReport:
    """Remove what finished before ``cutoff``; ``dry_run`` counts it and removes nothing.
    ``max_batches`` bounds the transactions (the periodic job's share of a sweep)."""
    report = PurgeReport(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        _count(report, attempts_dir)
        return report
    budget = [max_batches]
    for step in (_purge_runs, _purge_foreign_runs, _purge_lineage_events):
        if not step(report, attempts_dir, batch, budget):
            report.more = True
            break
    return report


def _spend(budget: list[int | None]) -> bool:
    """False when the batch budget is used up."""
    if budget[0] is None:
        return True
    if budget[0] <= 0:
        return False
    budget[0] -= 1
    return True


def finished_runs(cutoff: datetime) -> Select[Any]:
    """Runs that may be purged: finished before ``cutoff`` and owing no outbox work.
    (`created_at < cutoff` is implied, and lets the state/created index answer.)"""
    return select(Run.id, Run.created_at).where(
        Run.state.in_(_RUN_DONE), Run.created_at < cutoff,
        func.coalesce(Run.finished_at, Run.updated_at) < cutoff,
        ~exists().where(Outbox.run_id == Run.id))


def _purge_runs(report: PurgeReport, attempts_dir: Path, batch: int,
                budget: list[int | None]) -> bool:
    after: tuple[datetime, str] | None = None
    while True:
        if not _spend(budget):
            return False
        with session_scope() as session:
            query = finished_runs(report.cutoff)
            if after is not None:
                query = query.where(tuple_(Run.created_at, Run.id) > after)
            rows = session.execute(query.order_by(Run.created_at, Run.id).limit(batch)
                                   .with_for_update(of=Run, skip_locked=True)).all()
            if not rows:
                return True
            dirs = _delete_runs(session, [run_id for run_id, _ in rows], report.counts)
        after = (rows[-1][1], rows[-1][0])
        report.counts[ATTEMPT_DIRS] += remove_dirs(dirs, attempts_dir)


def _delete_runs(session: Session, ids: list[str], counts: Counter[str]) -> list[str]:
    """Delete the runs ``ids`` (locked by the caller) and what hangs off them; returns their
    attempts' folders, to remove once this transaction committed."""
    handles = session.scalars(select(Attempt.handle).where(Attempt.run_id.in_(ids))).all()
    attempts = select(Attempt.id).where(Attempt.run_id.in_(ids))
    keys = select(Attempt.key).where(Attempt.run_id.in_(ids))
    for key, statement in (
            (STATE_EVENTS, delete(StateEvent).where(StateEvent.run_id.in_(ids))),
            (EXTERNAL_RUNS, delete(ExternalRun).where(ExternalRun.attempt_id.in_(attempts))),
            (LAUNCH_CLAIMS, delete(LaunchClaim).where(LaunchClaim.key.in_(keys))),
            (ATTEMPTS.name, delete(Attempt).where(Attempt.run_id.in_(ids))),
            (NODE_RUNS.name, delete(NodeRun).where(NodeRun.run_id.in_(ids))),
            (RUNS.name, delete(Run).where(Run.id.in_(ids), Run.state.in_(_RUN_DONE)))):
        counts[key] += rowcount(session.execute(statement.execution_options(
            synchronize_session=False)))
    return list(_dirs_of(handles))


def _foreign_runs(cutoff: datetime) -> Select[Any]:
    return select(ExternalRun.id).where(ExternalRun.attempt_id.is_(None),
                                        ExternalRun.state.in_(_NODE_DONE),
                                        ExternalRun.updated_at < cutoff)


def _purge_foreign_runs(report: PurgeReport, _dir: Path, batch: int,
                        budget: list[int | None]) -> bool:
    return _purge_by_id(report, _foreign_runs(report.cutoff), ExternalRun.id, EXTERNAL_RUNS,
                        batch, budget)


def _old_lineage_events(cutoff: datetime) -> Select[Any]:
    return select(LineageEvent.id).where(LineageEvent.received_at < cutoff)


def _purge_lineage_events(report: PurgeReport, _dir: Path, batch: int,
                          budget: list[int | None]) -> bool:
    return _purge_by_id(report, _old_lineage_events(report.cutoff), LineageEvent.id,
                        LINEAGE_EVENTS.name, batch, budget)


def _purge_by_id(report: PurgeReport, query: Select[Any], column: Any, key: str, batch: int,
                 budget: list[int | None]) -> bool:
    """Delete the rows ``query`` selects, ``batch`` ids per transaction, walking the ids up
    (each batch starts where the last ended: no row is read twice)."""
    last = 0
    while True:
        if not _spend(budget):
            return False
        with session_scope() as session:
            ids = session.scalars(query.where(column > last).order_by(column).limit(batch)
                                  .with_for_update(skip_locked=True)).all()
            if not ids:
                return True
            report.counts[key] += rowcount(session.execute(
                delete(column.class_).where(column.in_(ids))
                .execution_options(synchronize_session=False)))
        last = ids[-1]


def _count(report: PurgeReport, attempts_dir: Path) -> None:
    """A dry run: what `purge` would remove now, counted in one read-only pass."""
    runs = finished_runs(report.cutoff).with_only_columns(Run.id)
    attempts = select(Attempt.id).where(Attempt.run_id.in_(runs))
    keys = select(Attempt.key).where(Attempt.run_id.in_(runs))
    counted = {
        RUNS.name: select(func.count()).select_from(
            finished_runs(report.cutoff).subquery()),
        NODE_RUNS.name: select(func.count()).where(NodeRun.run_id.in_(runs)),
        ATTEMPTS.name: select(func.count()).where(Attempt.run_id.in_(runs)),
        STATE_EVENTS: select(func.count()).where(StateEvent.run_id.in_(runs)),
        LAUNCH_CLAIMS: select(func.count()).where(LaunchClaim.key.in_(keys)),
        EXTERNAL_RUNS: select(func.count()).where(
            (ExternalRun.attempt_id.in_(attempts))
            | ExternalRun.id.in_(_foreign_runs(report.cutoff))),
        LINEAGE_EVENTS.name: select(func.count()).where(
            LineageEvent.id.in_(_old_lineage_events(report.cutoff))),
    }
    with session_scope() as session:
        for key, query in counted.items():
            report.counts[key] = session.scalar(query) or 0
        handles = session.execute(select(Attempt.handle).where(Attempt.run_id.in_(runs))
                                  .execution_options(yield_per=BATCH)).scalars()
        report.counts[ATTEMPT_DIRS] = sum(1 for _ in _removable(_dirs_of(handles),
                                                                attempts_dir))


def _dirs_of(handles: Iterable[dict[str, Any] | None]) -> Iterator[str]:
    for handle in handles:
        data = (handle or {}).get("data")
        folder = data.get("dir") if isinstance(data, dict) else None
        if isinstance(folder, str) and folder:
            yield folder


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` resolves strictly under ``root`` (resolved already by callers
    that ask many times) and is not itself a symbolic link (so a handle can never point
    the purge elsewhere, nor at another attempt's folder through a link)."""
    if not path.is_absolute() or path.is_symlink():
        return False
    real_root, resolved = root.resolve(), path.resolve()
    return resolved != real_root and resolved.is_relative_to(real_root)


def _removable(folders: Iterable[str], root: Path) -> Iterator[Path]:
    """The folders that exist and are inside ``root``; the others are logged."""
    real_root = root.resolve()
    for folder in folders:
        path = Path(folder)
        if not os.path.isdir(path):  # cheap first: most handles of old runs point nowhere
            continue
        if inside(path, real_root):
            yield path
        else:
            log.warning("retention: attempt folder %s is outside %s; left alone", folder,
                        root)


def remove_dirs(dirs: Iterable[str], attempts_dir: Path) -> int:
    """Remove each folder that is inside ``attempts_dir``; returns how many were removed.
    Folders elsewhere are left alone and logged; a folder that cannot be removed is logged
    and left for an operator (its rows are gone already)."""
    removed = 0
    for path in _removable(dirs, attempts_dir):
        try:
            shutil.rmtree(path)
            removed += 1
        except OSError as exc:
            log.warning("retention: cannot remove attempt folder %s: %s", path, exc)
    return removed
