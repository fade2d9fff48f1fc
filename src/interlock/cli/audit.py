"""`interlock audit verify` and `interlock audit export`, locally or through the API."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from interlock.audit.query import AuditFilter
from interlock.cli.backend import open_backend
from interlock.cli.common import guarded

audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)


@audit_app.command("verify")
@guarded
def verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Recompute the chain; exit 1 and name the first broken record if it was altered."""
    with open_backend() as backend:
        verdict = backend.audit_verify()
    if as_json:
        typer.echo(verdict.model_dump_json())
    elif verdict.ok:
        typer.echo(f"ok: {verdict.checked} record(s), every link intact")
    else:
        typer.echo(f"BROKEN at record {verdict.broken_at}: {verdict.reason} "
                   f"({verdict.checked} record(s) before it are intact)", err=True)
    raise typer.Exit(0 if verdict.ok else 1)


@audit_app.command("export")
@guarded
def export(output: Annotated[Path | None, typer.Option("--output", "-o",
                                                       help="Default: stdout.")] = None,
           actor: Annotated[str | None, typer.Option()] = None,
           action: Annotated[str | None, typer.Option()] = None,
           target: Annotated[str | None, typer.Option(help="exact, or a prefix ending in * or /")]
           = None,
           since: Annotated[datetime | None, typer.Option()] = None,
           until: Annotated[datetime | None, typer.Option()] = None) -> None:
    """Records as JSON Lines, oldest first, with their hashes."""
    filters = AuditFilter(actor=actor, action=action, target=target, since=since, until=until)
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    try:
        with open_backend() as backend:
            for line in backend.audit_export(filters):
                sink.write(line)
    finally:
        if output:
            sink.close()
