"""`interlock purge`: remove what finished long ago (runs, attempts, their folders, state
events, raw lineage events, foreign runs), on the store itself, in short batches."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from interlock.cli.common import EXIT_BAD_INPUT, JsonOpt, fail, guarded, out
from interlock.config.durations import parse_duration
from interlock.config.env import settings

MAX_DAYS = 36_500  # a hundred years: longer is a typo
_DAYS = re.compile(r"\s*(\d+)d\s*")


def older_than(value: str) -> timedelta:
    """`90d`, `2555d`, `12h`, `1h30m`: whole days up to MAX_DAYS, else a flow duration."""
    whole = _DAYS.fullmatch(value)
    if whole and int(whole.group(1)) <= MAX_DAYS:
        return timedelta(days=int(whole.group(1)))
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"--older-than: {exc}; whole days go up to {MAX_DAYS}d") from None
    return timedelta(seconds=seconds)


def local_only(command: str) -> None:
    """Retention works on the store itself, never through the API."""
    if settings().token:
        fail(f"`interlock {command}` works on the store directly: run it where "
             "INTERLOCK_DATABASE_URL reaches the store, without INTERLOCK_TOKEN", EXIT_BAD_INPUT)


@guarded
def purge(older_than_: Annotated[str, typer.Option(
              "--older-than", help="Age of what is removed: 90d, 2555d, 12h.")],
          dry_run: Annotated[bool, typer.Option(
              "--dry-run", help="Count what would be removed; remove nothing.")] = False,
          as_json: JsonOpt = False) -> None:
    """Remove finished runs older than --older-than with their attempts, attempt folders,
    state events, raw lineage events and foreign runs (never running work, never the audit
    trail: see `interlock audit archive`)."""
    local_only("purge")
    # Imported here: `interlock cron exec` in every crontab line loads this module.
    from interlock.operations import retention

    report = retention.purge(older_than=older_than(older_than_), dry_run=dry_run)
    counts = report.table()
    if as_json:
        typer.echo(json.dumps({"cutoff": report.cutoff.isoformat(), "dry_run": dry_run,
                               "counts": counts}))
        return
    verb = "would remove" if dry_run else "removed"
    table = Table(title=f"{verb} (finished before {report.cutoff:%Y-%m-%d %H:%M} UTC)",
                  title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for key, count in counts.items():
        table.add_row(key, str(count))
    out.print(table)
