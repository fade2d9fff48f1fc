"""`interlock cron ...` and `interlock import crontab`, mounted by the core CLI through the
`interlock.cli` entry-point group."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

cron_app = typer.Typer(help="Legacy cron jobs: wrap them so their runs are reported.",
                       no_args_is_help=True)


JobOpt = Annotated[str, typer.Option("--job", help="The job id in mappings/cron-<host>.yaml.")]


@cron_app.command("exec", context_settings={"ignore_unknown_options": True})
def exec_(job: JobOpt,
          command: Annotated[list[str], typer.Argument(help="The command, after `--`.")],
          system: Annotated[str | None, typer.Option(
              help="Default: INTERLOCK_CRON_SYSTEM, else cron/<short hostname>.")] = None) -> None:
    """Run COMMAND as cron job JOB and report it; its output and exit code are unchanged.

    In a crontab (as `interlock import crontab` writes it, so the shell keeps `&&`, pipes
    and redirections inside the job):

    30 2 * * * interlock cron exec --system cron/db1 --job backup -- /bin/sh -c 'cd / && backup'
    """
    from interlock_cron.wrapper import exit_like, run
    exit_like(run(job, command, system=system))


@cron_app.command("flush")
def flush(spool: Annotated[Path | None, typer.Option(
        help="Default: INTERLOCK_CRON_SPOOL, else $INTERLOCK_HOME/spool/cron.")] = None) -> None:
    """Send the reports spooled while the API was unreachable."""
    from interlock_cron.wrapper import make_spool
    left = make_spool(spool).flush()
    typer.echo(f"{left} report(s) still spooled" if left else "spool is empty")
    raise typer.Exit(1 if left else 0)


def import_crontab(
        file: Annotated[Path, typer.Argument(help="A crontab file, e.g. /etc/crontab or "
                                             "the output of `crontab -l`.")],
        host: Annotated[str | None, typer.Option(help="Default: this host's short name.")] = None,
        mappings: Annotated[Path, typer.Option(help="Where the mapping file goes.")] =
        Path("mappings"),
        flows: Annotated[Path, typer.Option(help="Where the flow draft goes.")] = Path("flows"),
        system_file: Annotated[bool | None, typer.Option(
            "--system-crontab/--user-crontab",
            help="Lines have a user field (/etc/crontab style). Default: detect.")] = None,
        grace: Annotated[str, typer.Option(
            help="How late a run may start before it is LATE (e.g. 5m, 1h).")] = "5m",
        force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False) -> None:
    """A crontab -> mappings/cron-<host>.yaml and an editable flow draft, one node per job."""
    from interlock_cron.crontab import parse_crontab
    from interlock_cron.draft import write_import
    try:
        text = file.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        typer.echo(f"error: cannot read {file}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    crontab = parse_crontab(text, path=str(file), system=system_file)
    for problem in crontab.problems:
        typer.echo(f"{file}:{problem.line}:{problem.column}: {problem.message} (skipped)",
                   err=True)
    try:
        result = write_import(crontab, host=host or socket.gethostname().split(".")[0],
                              mappings_dir=mappings, flows_dir=flows, grace=grace,
                              overwrite=force)
    except (FileExistsError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {result.jobs} job(s) to {result.mapping_path} and {result.flow_path}"
               + (f"; {len(result.problems)} line(s) skipped" if result.problems else ""))


def install(app: typer.Typer, import_app: typer.Typer) -> None:
    """Called by the core CLI (entry point `interlock.cli`)."""
    app.add_typer(cron_app, name="cron")
    import_app.command("crontab")(import_crontab)
