"""`interlock audit verify` and `interlock audit export`, locally or through the API;
`interlock audit archive`, on the store itself."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from interlock.audit.query import AuditFilter
from interlock.cli.backend import open_backend
from interlock.cli.common import CLI_ACTOR, JsonOpt, guarded
from interlock.cli.retention import local_only

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
                "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"]
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
        archived = (f", from a signed anchor of {verdict.archived} archived record(s)"
                    if verdict.anchors else "")
        typer.echo(f"ok: {verdict.checked} record(s), every link intact{archived}")
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


@audit_app.command("archive")
@guarded
def archive(before: Annotated[datetime, typer.Option(
                formats=DATE_FORMATS,
                help="Archive the records written before this date (UTC unless it says).")],
            output: Annotated[Path, typer.Option("--output", "-o",
                                                 help="A new JSON Lines file.")],
            as_json: JsonOpt = False) -> None:
    """Move the records before --before to a file (the export's format, with hashes), fsynced
    first, then delete them and leave a signed anchor; `audit verify` proves the rest from
    it. Needs INTERLOCK_AUDIT_KEY (or INTERLOCK_AUDIT_KEY_FILE)."""
    local_only("audit archive")
    # Imported here: `interlock cron exec` in every crontab line loads this module.
    from interlock.operations import retention

    result = retention.archive_audit(before=before, output=output, actor=CLI_ACTOR)
    if as_json:
        typer.echo(json.dumps({"records": result.records, "first_seq": result.first_seq,
                               "last_seq": result.last_seq,
                               "file": str(result.file) if result.file else None,
                               "file_sha256": result.file_sha256,
                               "anchor_id": result.anchor_id}))
    elif result.records:
        typer.echo(f"archived records {result.first_seq}..{result.last_seq} "
                   f"({result.records}) to {result.file} (sha256 {result.file_sha256}); "
                   f"anchor {result.anchor_id} signed")
    else:
        typer.echo(f"nothing to archive: no record before {before.isoformat()} is left")
