"""`interlock approvals [show ID]`, `interlock approve ID`, `interlock reject ID`: the inbox,
one request with its evidence, and a vote, locally or through the API
(`interlock.cli.backend`), with the same output and exit codes either way.

A vote names an option; without `--option`, `approve` picks the request's first option that
does not reject and `reject` its first rejecting one (so a gate with its own option names
needs no typing). A refusal (not among the people asked, separation of duties, already
decided) exits 1 with the server's own sentence.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from interlock.cli.approvals_render import inbox_table, request_view, vote_lines
from interlock.cli.backend import Backend, open_backend
from interlock.cli.common import JsonOpt, err, guarded, out
from interlock.cli.runs import _parse_inputs as parse_inputs
from interlock.states import RUN_TERMINAL, ApprovalState, NodeState
from interlock.store.approvals import RequestFilter
from interlock.store.tables import ApprovalOrigin

MAX_ID = 40  # characters of a request id (the store's column): longer is a typo or worse
MAX_LIMIT = 500
# Nodes that mean the run is still moving on its own after a decision.
_MOVING = frozenset({NodeState.QUEUED, NodeState.RUNNING, NodeState.RETRY_WAIT})

approvals_app = typer.Typer(help="The approval inbox: list requests, show one with its "
                            "evidence (vote with `interlock approve` / `reject`).",
                            invoke_without_command=True)
IdArg = Annotated[str, typer.Argument(metavar="ID", help="An approval request's id.")]
CommentOpt = Annotated[str, typer.Option(
    "--comment", "-m", help="Why: kept with the vote and in the audit trail.")]


def request_id(value: str) -> str:
    """The id as typed, if it can be one (a bounded message for anything else)."""
    if not value or len(value) > MAX_ID or not value.isprintable():
        raise ValueError(f"{value[:MAX_ID]!r}{'…' if len(value) > MAX_ID else ''} is not an "
                         f"approval request id (ids are 1-{MAX_ID} printable characters; "
                         "`interlock approvals` lists them)")
    return value


@approvals_app.callback()
@guarded
def inbox(ctx: typer.Context,
          mine: Annotated[bool, typer.Option(
              "--mine", help="Only pending requests you could still vote on.")] = False,
          state: Annotated[ApprovalState | None, typer.Option("--state")] = None,
          namespace: Annotated[str | None, typer.Option("--namespace")] = None,
          flow: Annotated[str | None, typer.Option("--flow", help="namespace/flow-id")] = None,
          run: Annotated[str | None, typer.Option("--run", help="A run's id.")] = None,
          origin: Annotated[ApprovalOrigin | None, typer.Option("--origin")] = None,
          limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 50,
          as_json: JsonOpt = False) -> None:
    """List approval requests, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    if flow is not None and "/" not in flow:
        raise ValueError(f"--flow {flow!r}: write namespace/flow-id")
    # --mine means "waiting for me": pending ones, unless another state is asked for.
    states = (state,) if state else ((ApprovalState.PENDING,) if mine else ())
    filters = RequestFilter(states=states, namespace=namespace, flow=flow, run_id=run,
                            origin=origin)
    with open_backend() as backend:
        rows = backend.list_approvals(filters, mine=mine, limit=limit)
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        out.print(inbox_table(rows))


@approvals_app.command("show")
@guarded
def show(request: IdArg, as_json: JsonOpt = False) -> None:
    """A request with its evidence: payload, votes, what is missing, run, upstream, impact."""
    with open_backend() as backend:
        detail = backend.get_approval(request_id(request))
    if as_json:
        typer.echo(json.dumps(detail))
    else:
        out.print(request_view(detail))


@guarded
def approve(request: IdArg, comment: CommentOpt,
            option: Annotated[str | None, typer.Option(
                "--option", help="Default: the request's first option that approves.")] = None,
            input: Annotated[list[str], typer.Option(  # noqa: A002
                "--input", "-i", help="name=value, for the inputs the request asks")] = [],  # noqa: B006
            as_json: JsonOpt = False) -> None:
    """Vote to approve a request; prints what the vote counted toward and what is missing."""
    _vote(request, comment=comment, option=option, inputs=parse_inputs(input),
          rejecting=False, as_json=as_json)


@guarded
def reject(request: IdArg, comment: CommentOpt,
           option: Annotated[str | None, typer.Option(
               "--option", help="Default: the request's first option that rejects.")] = None,
           as_json: JsonOpt = False) -> None:
    """Vote to reject a request (one rejecting vote decides it); the comment is the reason."""
    _vote(request, comment=comment, option=option, inputs={}, rejecting=True,
          as_json=as_json)


def _vote(request: str, *, comment: str, option: str | None, inputs: dict[str, str],
          rejecting: bool, as_json: bool) -> None:
    with open_backend() as backend:
        asked = backend.get_approval(request_id(request))  # its options, run and node
        chosen = option or _default_option(asked, rejecting=rejecting)
        outcome = backend.vote(request, option=chosen, inputs=inputs, comment=comment)
        decided = outcome.get("state") != ApprovalState.PENDING.value
        run_state = None
        if backend.embedded and decided and asked.get("run_id"):
            # The run moves on in this process only: let it get past the gate first.
            run_state = _settle(backend, str(asked["run_id"]), str(asked.get("node_id")))
    if as_json:
        typer.echo(json.dumps({**outcome, "option": chosen}))
        return
    for line in vote_lines(outcome, chosen):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    if run_state is not None:
        out.print(f"run {asked['run_id']}: {run_state}", highlight=False, markup=False)


def _default_option(asked: dict[str, Any], *, rejecting: bool) -> str:
    options = [str(o) for o in asked.get("options") or []]
    rejects = {str(o) for o in asked.get("reject_options") or []}
    fitting = [o for o in options if (o in rejects) is rejecting]
    if not fitting:
        kind = "rejects" if rejecting else "approves"
        raise ValueError(f"request {asked.get('id')} offers no option that {kind} "
                         f"({', '.join(options)}); pass --option")
    return fitting[0]


def _settle(backend: Backend, run_id: str, node_id: str) -> str:
    """Wait until the run ends, or rests at another gate with nothing else moving."""
    while True:
        detail = backend.get_run(run_id)
        if detail.state in RUN_TERMINAL:
            return detail.state.value
        states = {n.id: n.state for n in detail.nodes}
        past_gate = states.get(node_id) is not NodeState.APPROVAL_WAIT
        at_gate = NodeState.APPROVAL_WAIT in states.values()
        if past_gate and at_gate and not set(states.values()) & _MOVING:
            err.print("[dim]the run waits for another approval[/]")
            return detail.state.value
        time.sleep(backend.poll_s)
