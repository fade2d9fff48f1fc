"""The `interlock` command."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from interlock.adapters.registry import default_registry
from interlock.cli import approvals as approval_commands
from interlock.cli import retention as retention_commands
from interlock.cli import runs as run_commands
from interlock.cli.agents import agent as _agent
from interlock.cli.audit import audit_app
from interlock.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    JsonOpt,
    err,
    fail,
    guarded,
    out,
)
from interlock.cli.serve import serve
from interlock.cli.tokens import admin_app, tokens_app
from interlock.cli.trace import trace as _trace
from interlock.config.env import settings
from interlock.errors import InterlockError
from interlock.operations import imports
from interlock.operations import policies as policy_ops
from interlock.operations.runtime import make_dispatcher

app = typer.Typer(help="Interlock: one flow graph above the schedulers you already run.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
CLI_ENTRY_POINTS = "interlock.cli"


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Flow files or directories.")],
             as_json: JsonOpt = False) -> None:
    """Check flows, and the policies covering them; print every problem as
    file:line:col: message (exit 2 if any)."""
    problems = policy_ops.validate(paths)
    if as_json:
        out.print_json(json.dumps([p.__dict__ for p in problems]))
    else:
        for problem in problems:
            out.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        if not problems:
            out.print(f"[green]ok[/]: {len(paths)} path(s), no problems")
    raise typer.Exit(EXIT_BAD_INPUT if problems else EXIT_OK)


for _command in run_commands.COMMANDS:
    app.command()(_command)
app.command()(serve)
app.command(name="purge")(retention_commands.purge)


@app.command()
def worker(concurrency: Annotated[int, typer.Option(min=1)] = 8,
           loglevel: Annotated[str, typer.Option()] = "INFO",
           name: Annotated[str | None, typer.Option(help="Celery node name.")] = None) -> None:
    """Run a Celery worker (needs INTERLOCK_BROKER_URL) with a reconciler beside it."""
    from interlock.operations.worker import run_worker
    if not settings().broker_url:
        fail("INTERLOCK_BROKER_URL is not set; e.g. redis://127.0.0.1:6379/0", EXIT_BAD_INPUT)
    run_worker(concurrency=concurrency, loglevel=loglevel, name=name)


@app.command(name="worker-ping")
def worker_ping(name: Annotated[str | None, typer.Argument(
                    help="The worker's node name; default: this host's `interlock worker`.")]
                = None,
                timeout: Annotated[float, typer.Option(min=0.1, max=60)] = 5.0) -> None:
    """Ask a worker, through the broker, whether it is alive (exit 0) or not (exit 1): a
    container health check."""
    from interlock.operations.worker_ping import default_name, ping
    if not settings().broker_url:
        fail("INTERLOCK_BROKER_URL is not set; e.g. redis://127.0.0.1:6379/0", EXIT_BAD_INPUT)
    who = name or default_name()
    if not ping(who, timeout=timeout):
        fail(f"worker {who} did not answer within {timeout:g}s", 1)
    typer.echo(f"{who}: pong")


@app.command()
def schema(output: Annotated[Path | None, typer.Option("--output", "-o")] = None) -> None:
    """Print (or write) the JSON Schema of flow files, for editors."""
    from interlock.spec.schema import flow_schema_text
    text = flow_schema_text()
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)  # raw: a console would wrap long lines inside strings


app.command(name="trace")(guarded(_trace))
app.command(name="agent")(guarded(_agent))
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")
app.add_typer(approval_commands.approvals_app, name="approvals")
app.command(name="approve")(approval_commands.approve)
app.command(name="reject")(approval_commands.reject)
app.add_typer(admin_app, name="admin")


class AdapterImports(TyperGroup):
    """`interlock import <kind>` for every installed adapter that implements `discover`,
    made when asked for: listing them loads the adapters, running one loads only its own."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        kinds = {kind for kind in default_registry().kinds if _import_command(kind)}
        return sorted({*super().list_commands(ctx), *kinds})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _import_command(cmd_name)


import_app = typer.Typer(help="Map what a foreign system offers into an editable mapping file.",
                         no_args_is_help=True, cls=AdapterImports)
app.add_typer(import_app, name="import")
SystemOpt = Annotated[str, typer.Option("--system", help="A registered system, e.g. airflow/prod.")]
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Default: mappings/<kind>-<name>.yaml.")]


def _import_command(kind: str) -> click.Command | None:
    try:
        adapter = default_registry().adapter_class(kind)
    except InterlockError:  # a broken adapter has no import; its own commands say why
        return None
    if not adapter.can_discover():
        return None

    def import_kind(system: SystemOpt, output: OutputOpt = None) -> None:
        _import_system(kind, system, output)

    single = typer.Typer(add_completion=False)
    single.command(kind, help=adapter.import_help)(guarded(import_kind))
    command = typer.main.get_command(single)
    command.name = kind
    return command


def _import_system(kind: str, system: str, output: Path | None) -> None:
    if not system.startswith(f"{kind}/"):
        fail(f"--system {system!r} is not a {kind} system (names are {kind}/<name>)",
             EXIT_BAD_INPUT)
    document = imports.discover(system)
    path = imports.write(document, output or imports.default_path(system))
    imports.record_lineage(document)
    out.print(f"wrote {len(document['jobs'])} job(s) of {system} to {path}")


@app.command()
def scheduler(loglevel: Annotated[str, typer.Option()] = "INFO") -> None:
    """Fire the flows' `schedule:` triggers; run one or more (each tick fires once)."""
    import logging
    import signal

    from interlock.triggers.schedule import Scheduler
    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    dispatcher = make_dispatcher()
    running = Scheduler(dispatcher)
    signal.signal(signal.SIGTERM, lambda *_: running.stop())
    try:
        running.run()
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(dispatcher, "close", None)
        if close is not None:
            close()


def _install_plugins() -> None:
    """Adapters add their own commands (`interlock cron exec`, `interlock import crontab`)."""
    for entry in entry_points(group=CLI_ENTRY_POINTS):
        try:
            entry.load()(app, import_app)
        except Exception as exc:  # a broken adapter must not take the whole CLI down
            err.print(f"[yellow]warning:[/] commands of {entry.name} not loaded: {exc!r}")


_install_plugins()


if __name__ == "__main__":
    app()
