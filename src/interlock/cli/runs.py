"""`interlock run`, `status`, `logs`, `runs`, `cancel`, `retry`: runs, locally or through
the API (`interlock.cli.backend`), with the same output and exit codes either way."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live

from interlock.cli.backend import Backend, open_backend
from interlock.cli.common import EXIT_OK, EXIT_RUN_FAILED, JsonOpt, err, guarded, out
from interlock.cli.render import run_table, runs_table
from interlock.states import RUN_TERMINAL, RunState
from interlock.store.runs import RunFilter
from interlock.store.views import RunDetail

RunArg = Annotated[str, typer.Argument(metavar="RUN")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Show progress until it ends.")]


def _parse_inputs(pairs: list[str]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--input {pair!r}: write name=value")
        inputs[name] = value
    return inputs


@guarded
def run(flow: Annotated[str, typer.Argument(
            metavar="FLOW", help="A flow's YAML file, or a registered flow as namespace/flow-id.")],
        input: Annotated[list[str], typer.Option("--input", "-i", help="name=value")] = [],  # noqa: B006
        wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Start a run of FLOW (exit 0 if it succeeds, 1 if it fails)."""
    with open_backend() as backend:
        namespace, flow_id = _flow_ref(backend, flow)
        run_id = backend.start_run(namespace=namespace, flow_id=flow_id,
                                   inputs=_parse_inputs(input))
        if not wait and not backend.embedded:
            _print_started(run_id, as_json)
            return
        if backend.embedded and not as_json and not wait:
            err.print("[dim]no INTERLOCK_BROKER_URL: running in this process until the run ends[/]")
        detail = _wait(backend, run_id, live=wait and not as_json)
    _report(detail, as_json, shown=wait)


def _flow_ref(backend: Backend, flow: str) -> tuple[str, str]:
    """(namespace, flow id) of a YAML file (registered first) or of a `namespace/id` ref."""
    path = Path(flow)
    if path.is_file():
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read {flow}: {exc}") from exc
        return backend.register(source, file=flow)
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


def _wait(backend: Backend, run_id: str, *, live: bool) -> RunDetail:
    detail = backend.get_run(run_id)
    with Live(run_table(detail), console=out, refresh_per_second=8, transient=False) \
            if live else _Quiet() as view:
        while detail.state not in RUN_TERMINAL:
            time.sleep(backend.poll_s)
            detail = backend.get_run(run_id)
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


def _report(detail: RunDetail, as_json: bool, shown: bool = False) -> None:
    """Print the final state (unless the live view already shows it) and exit 0 or 1."""
    if as_json:
        out.print_json(detail.model_dump_json())
    elif not shown:
        out.print(run_table(detail))
    raise typer.Exit(EXIT_OK if detail.state is RunState.SUCCEEDED else EXIT_RUN_FAILED)


@guarded
def status(run_id: RunArg, as_json: JsonOpt = False) -> None:
    """Show a run: its nodes, states, attempts and errors."""
    with open_backend() as backend:
        detail = backend.get_run(run_id)
    if as_json:
        out.print_json(detail.model_dump_json())
    else:
        out.print(run_table(detail))


@guarded
def logs(run_id: RunArg,
         node: Annotated[str | None, typer.Argument(metavar="[NODE]")] = None,
         attempt: Annotated[int | None,
                            typer.Option(help="Attempt number (default: last).")] = None,
         as_json: JsonOpt = False) -> None:
    """Print the log of one node, or of every node that ran."""
    with open_backend() as backend:
        detail = backend.get_run(run_id)
        nodes = [node] if node else [n.id for n in detail.nodes if n.attempts]
        chunks = [backend.node_logs(run_id, n, attempt=attempt) for n in nodes]
    if as_json:
        out.print_json(json.dumps([c.model_dump() for c in chunks]))
        return
    for chunk in chunks:
        out.rule(f"{chunk.node_id} (attempt {chunk.attempt})")
        out.print(chunk.text, highlight=False, markup=False, end="")


@guarded
def runs(state: Annotated[RunState | None, typer.Option(help="Only runs in this state.")] = None,
         flow: Annotated[str | None, typer.Option(help="namespace/flow-id")] = None,
         limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
         as_json: JsonOpt = False) -> None:
    """List recent runs, newest first."""
    namespace, flow_id = (flow.split("/", 1) if flow and "/" in flow else (None, flow))
    with open_backend() as backend:
        page = backend.list_runs(RunFilter(state=state, namespace=namespace, flow_id=flow_id),
                                 limit=limit)
    if as_json:
        out.print_json(page.model_dump_json())
    else:
        out.print(runs_table(page.runs))


@guarded
def cancel(run_id: RunArg) -> None:
    """Cancel a run: pending nodes are cancelled, running jobs are asked to stop."""
    with open_backend() as backend:
        backend.cancel_run(run_id)
        if backend.embedded:
            _wait(backend, run_id, live=False)
    out.print(f"cancel requested for run {run_id}", highlight=False)


@guarded
def retry(run_id: RunArg, wait: WaitOpt = False, as_json: JsonOpt = False) -> None:
    """Re-run a failed run from its failed nodes, keeping what succeeded."""
    with open_backend() as backend:
        reopened = backend.retry_run(run_id)
        if not as_json:
            err.print(f"retrying {', '.join(reopened)} of run {run_id}", highlight=False)
        if not wait and not backend.embedded:
            return
        detail = _wait(backend, run_id, live=wait and not as_json)
    _report(detail, as_json, shown=wait)


COMMANDS = (run, status, logs, runs, cancel, retry)
