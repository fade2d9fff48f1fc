"""`interlock trace RUN`: a run end to end across systems, and why it failed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from interlock.cli.backend import open_backend
from interlock.cli.trace_render import cause_block, timeline, trace_tree

out = Console()


def trace(run_id: Annotated[str, typer.Argument(metavar="RUN")],
          as_json: Annotated[bool, typer.Option("--json",
                                                help="Print machine-readable JSON.")] = False,
          ) -> None:
    """Trace a run across systems: tree, timeline and root cause of a failure."""
    with open_backend() as backend:
        result = backend.run_trace(run_id)
    if as_json:
        out.print_json(result.model_dump_json())
        return
    out.print(trace_tree(result))
    out.print(timeline(result, width=out.width))
    out.print(cause_block(result))
