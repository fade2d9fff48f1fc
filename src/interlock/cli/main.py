"""The `interlock` command."""

from __future__ import annotations

import functools
import getpass
import json
import time
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import click
import typer
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from typer.core import TyperGroup

from interlock.adapters.registry import default_registry
from interlock.cli.audit import audit_app
from interlock.cli.render import run_table, runs_table
from interlock.cli.trace import trace as _trace
from interlock.config.env import settings
from interlock.errors import InterlockError, SpecError
from interlock.operations import imports
from interlock.operations import runs as ops
from interlock.operations.runtime import make_dispatcher
from interlock.spec.inputs import InputError
from interlock.spec.loader import validate_paths
from interlock.states import RUN_TERMINAL, RunState
from interlock.store.outbox import Dispatcher
from interlock.store.runs import RunFilter
from interlock.store.views import RunDetail

app = typer.Typer(help="Interlock: one flow graph above the schedulers you already run.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
out = Console()
err = Console(stderr=True)

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT = 0, 1, 2
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
CLI_ENTRY_POINTS = "interlock.cli"
CLI_ACTOR = f"cli:{getpass.getuser()}"  # the audit trail's actor for what this command does
F = TypeVar("F", bound=Callable[..., Any])


def make_url_safe(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def fail(message: str, code: int) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Interlock's own errors become a message and an exit code, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                err.print(str(problem), highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (InputError, ValueError) as exc:
            fail(str(exc), EXIT_BAD_INPUT)
        except InterlockError as exc:
            fail(str(exc), EXIT_RUN_FAILED)
        except (OperationalError, ArgumentError) as exc:
            url = make_url_safe(settings().database_url)
            fail(f"cannot use the store at {url}: {str(exc).splitlines()[0]}; check "
                 "INTERLOCK_DATABASE_URL and that the database is running", EXIT_RUN_FAILED)
    return wrapper  # type: ignore[return-value]


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="Flow files or directories.")],
             as_json: JsonOpt = False) -> None:
    """Check flows; print every problem as file:line:col: message (exit 2 if any)."""
    problems = validate_paths(paths)
    if as_json:
        out.print_json(json.dumps([p.__dict__ for p in problems]))
    else:
        for problem in problems:
            out.print(str(problem), highlight=False, markup=False, soft_wrap=True)
        if not problems:
            out.print(f"[green]ok[/]: {len(paths)} path(s), no problems")
    raise typer.Exit(EXIT_BAD_INPUT if problems else EXIT_OK)


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--input {pair!r}: write name=value")
        inputs[name] = value
    return inputs


@app.command()
@guarded
def run(flow: Annotated[str, typer.Argument(
            metavar="FLOW", help="A flow's YAML file, or a registered flow as namespace/flow-id.")],
        input: Annotated[list[str], typer.Option("--input", "-i", help="name=value")] = [],  # noqa: B006
        wait: Annotated[bool, typer.Option("--wait", help="Show progress until it ends.")] = False,
        as_json: JsonOpt = False) -> None:
    """Start a run of FLOW (exit 0 if it succeeds, 1 if it fails)."""
    namespace, flow_id = _flow_ref(flow)
    dispatcher = make_dispatcher()
    embedded = settings().embedded
    try:
        run_id = ops.start_run(namespace=namespace, flow_id=flow_id,
                               inputs=_parse_inputs(input), dispatcher=dispatcher,
                               inputs_are_strings=True, actor=CLI_ACTOR)
        if not wait and not embedded:
            _print_started(run_id, as_json)
            return
        if embedded and not as_json and not wait:
            err.print("[dim]no INTERLOCK_BROKER_URL: running in this process until the run ends[/]")
        detail = _wait(run_id, live=wait and not as_json)
    finally:
        _close(dispatcher)
    _report(detail, as_json, shown=wait)


def _flow_ref(flow: str) -> tuple[str, str]:
    """(namespace, flow id) of a YAML file (registered first) or of a `namespace/id` ref."""
    path = Path(flow)
    if path.is_file():
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {flow}: {exc}") from exc
        spec, _ = ops.register(source, file=flow, actor=CLI_ACTOR)
        return spec.namespace, spec.id
    namespace, sep, flow_id = flow.rpartition("/")
    if sep and namespace and flow_id and not flow.endswith((".yaml", ".yml")):
        return namespace, flow_id  # start_run says so if it is not registered
    raise ValueError(f"{flow}: no such file; give a flow's YAML file or a registered flow as "
                     "namespace/flow-id")


def _print_started(run_id: str, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps({"id": run_id}))
    else:
        out.print(f"started run {run_id}", highlight=False)


def _wait(run_id: str, *, live: bool) -> RunDetail:
    detail = ops.get_run(run_id)
    with Live(run_table(detail), console=out, refresh_per_second=8, transient=False) \
            if live else _Quiet() as view:
        while detail.state not in RUN_TERMINAL:
            time.sleep(0.1)
            detail = ops.get_run(run_id)
            if live:
                view.update(run_table(detail))
    return detail


class _Quiet:
    def __enter__(self) -> _Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _renderable: object) -> None:
        return None


def _close(dispatcher: Dispatcher) -> None:
    close = getattr(dispatcher, "close", None)
    if close is not None:
        close()


def _report(detail: RunDetail, as_json: bool, shown: bool = False) -> None:
    """Print the final state (unless the live view already shows it) and exit 0 or 1."""
    if as_json:
        out.print_json(detail.model_dump_json())
    elif not shown:
        out.print(run_table(detail))
    raise typer.Exit(EXIT_OK if detail.state is RunState.SUCCEEDED else EXIT_RUN_FAILED)


@app.command()
@guarded
def status(run_id: Annotated[str, typer.Argument(metavar="RUN")], as_json: JsonOpt = False) -> None:
    """Show a run: its nodes, states, attempts and errors."""
    detail = ops.get_run(run_id)
    if as_json:
        out.print_json(detail.model_dump_json())
    else:
        out.print(run_table(detail))


@app.command()
@guarded
def logs(run_id: Annotated[str, typer.Argument(metavar="RUN")],
         node: Annotated[str | None, typer.Argument(metavar="[NODE]")] = None,
         attempt: Annotated[int | None,
                            typer.Option(help="Attempt number (default: last).")] = None,
         as_json: JsonOpt = False) -> None:
    """Print the log of one node, or of every node that ran."""
    detail = ops.get_run(run_id)
    nodes = [node] if node else [n.id for n in detail.nodes if n.attempts]
    chunks = [ops.node_logs(run_id, n, attempt=attempt) for n in nodes]
    if as_json:
        out.print_json(json.dumps([c.model_dump() for c in chunks]))
        return
    for chunk in chunks:
        out.rule(f"{chunk.node_id} (attempt {chunk.attempt})")
        out.print(chunk.text, highlight=False, markup=False, end="")


@app.command()
@guarded
def runs(state: Annotated[RunState | None, typer.Option(help="Only runs in this state.")] = None,
         flow: Annotated[str | None, typer.Option(help="namespace/flow-id")] = None,
         limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
         as_json: JsonOpt = False) -> None:
    """List recent runs, newest first."""
    namespace, flow_id = (flow.split("/", 1) if flow and "/" in flow else (None, flow))
    page = ops.list_runs(filters=RunFilter(state=state, namespace=namespace, flow_id=flow_id),
                         limit=limit)
    if as_json:
        out.print_json(page.model_dump_json())
    else:
        out.print(runs_table(page.runs))


@app.command()
@guarded
def cancel(run_id: Annotated[str, typer.Argument(metavar="RUN")]) -> None:
    """Cancel a run: pending nodes are cancelled, running jobs are asked to stop."""
    dispatcher = make_dispatcher()
    try:
        ops.cancel_run(run_id, dispatcher=dispatcher, actor=CLI_ACTOR)
        if settings().embedded:
            _wait(run_id, live=False)
    finally:
        _close(dispatcher)
    out.print(f"cancel requested for run {run_id}", highlight=False)


@app.command()
@guarded
def retry(run_id: Annotated[str, typer.Argument(metavar="RUN")],
          wait: Annotated[bool,
                          typer.Option("--wait", help="Show progress until it ends.")] = False,
          as_json: JsonOpt = False) -> None:
    """Re-run a failed run from its failed nodes, keeping what succeeded."""
    dispatcher = make_dispatcher()
    try:
        reopened = ops.retry_run(run_id, dispatcher=dispatcher, actor=CLI_ACTOR)
        if not as_json:
            err.print(f"retrying {', '.join(reopened)} of run {run_id}", highlight=False)
        if not wait and not settings().embedded:
            return
        detail = _wait(run_id, live=wait and not as_json)
    finally:
        _close(dispatcher)
    _report(detail, as_json, shown=wait)


@app.command()
def serve(host: Annotated[str, typer.Option()] = "127.0.0.1",
          port: Annotated[int, typer.Option()] = 8000) -> None:
    """Serve the HTTP API (/api/v1, OpenAPI at /openapi.json)."""
    import uvicorn

    from interlock.api.main import create_app
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def worker(concurrency: Annotated[int, typer.Option(min=1)] = 8,
           loglevel: Annotated[str, typer.Option()] = "INFO",
           name: Annotated[str | None, typer.Option(help="Celery node name.")] = None) -> None:
    """Run a Celery worker (needs INTERLOCK_BROKER_URL) with a reconciler beside it."""
    from interlock.operations.worker import run_worker
    if not settings().broker_url:
        fail("INTERLOCK_BROKER_URL is not set; e.g. redis://127.0.0.1:6379/0", EXIT_BAD_INPUT)
    run_worker(concurrency=concurrency, loglevel=loglevel, name=name)


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
app.add_typer(audit_app, name="audit")


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
        _close(dispatcher)


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
