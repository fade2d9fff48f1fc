"""Statements and transactions a process sends to the store, counted by SQLAlchemy's events.

`bench/throughput.py --cost` puts this folder first on the workers' PYTHONPATH; its
`sitecustomize.py` calls `install_from_env()`, so each `interlock worker` counts what it
sends and writes the totals to ``$INTERLOCK_BENCH_COUNTS/<pid>.json`` a few times a
second. Nothing in `src/` knows about it.

A transaction is a *write* when it sent an INSERT, UPDATE or DELETE (or took a row lock,
`SELECT ... FOR UPDATE`); statements of the reconciler's thread (sweeps, periodic jobs) are
kept apart as background, so what a run costs is read without them.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

ENV = "INTERLOCK_BENCH_COUNTS"
BACKGROUND_THREAD = "interlock-reconciler"
WRITES = frozenset({"INSERT", "UPDATE", "DELETE", "LOCK"})
DUMP_EVERY_S = 0.2
_totals: Counter[str] = Counter()
_lock = threading.Lock()
_installed = False


def kind_of(statement: str) -> str:
    """SELECT, INSERT, UPDATE, DELETE, LOCK (a SELECT ... FOR UPDATE) or OTHER."""
    head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if head == "SELECT" and "FOR UPDATE" in statement.upper():
        return "LOCK"
    return head if head in {"SELECT", "INSERT", "UPDATE", "DELETE"} else "OTHER"


def _pending(conn: Any) -> Counter[str]:
    return conn.info.setdefault("bench_pending", Counter())


def _on_statement(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    _pending(conn)[kind_of(statement)] += 1


def _on_end(conn: Any, outcome: str) -> None:
    pending = _pending(conn)
    if not pending:
        return
    where = "bg" if threading.current_thread().name == BACKGROUND_THREAD else "run"
    tx = "write" if any(pending[k] for k in WRITES) else "read"
    if outcome == "rollback":
        tx = "rolledback"
    with _lock:
        _totals[f"{where}.{tx}.tx"] += 1
        for kind, n in pending.items():
            _totals[f"{where}.{tx}.{kind}"] += n
    pending.clear()


def install() -> None:
    """Count every engine's statements in this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    event.listen(Engine, "before_cursor_execute", _on_statement)
    event.listen(Engine, "commit", lambda conn: _on_end(conn, "commit"))
    event.listen(Engine, "rollback", lambda conn: _on_end(conn, "rollback"))


def totals() -> Counter[str]:
    with _lock:
        return Counter(_totals)


def install_from_env() -> None:
    """In a worker: count, and dump the totals to the folder the bench named."""
    folder = os.environ.get(ENV)
    if not folder:
        return
    install()
    target = Path(folder) / f"{os.getpid()}.json"

    def dump() -> None:
        while True:
            threading.Event().wait(DUMP_EVERY_S)
            temp = target.with_suffix(".tmp")
            temp.write_text(json.dumps(totals()))
            temp.replace(target)

    threading.Thread(target=dump, name="bench-counts", daemon=True).start()


def read_all(folder: Path) -> Counter[str]:
    """The totals every process dumped into ``folder``, summed."""
    summed: Counter[str] = Counter()
    for path in folder.glob("*.json"):
        try:
            summed.update(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being replaced right now: the next read has it
    return summed
