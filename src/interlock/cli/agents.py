"""`interlock agent RUN NODE`: an agent node's steps as a tree (`docs/agents.md`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from interlock.cli.backend import open_backend
from interlock.operations.agents import AgentStepPublic, AgentTrail

out = Console()


def agent(run_id: Annotated[str, typer.Argument(metavar="RUN")],
          node_id: Annotated[str, typer.Argument(metavar="NODE")],
          as_json: Annotated[bool, typer.Option("--json",
                                                help="Print machine-readable JSON.")] = False,
          ) -> None:
    """Show an agent node's model requests and tool calls, with policy and usage."""
    with open_backend() as backend:
        trail = backend.agent_trail(run_id, node_id)
    if as_json:
        out.print_json(trail.model_dump_json())
        return
    out.print(agent_tree(trail))


def agent_tree(trail: AgentTrail) -> Tree:
    used = trail.usage
    outcome = trail.outcome or {"state": "running"}
    root = Tree(f"[bold]{escape(trail.node_id)}[/] of run {escape(trail.run_id)}: "
                f"{escape(str(outcome.get('state')))} — {used['model_requests']} request(s), "
                f"{used['tool_calls']} tool call(s), {used['input_tokens']}/"
                f"{used['output_tokens']} tokens in/out")
    if outcome.get("error"):
        root.add(f"[red]{escape(str(outcome['error']))}[/]")
    branch = root
    for step in trail.steps:
        label = _label(step)
        if step.kind == "model":
            branch = root.add(label)  # tool calls hang under the request that asked them
        else:
            branch.add(label)
    return root


def _label(step: AgentStepPublic) -> str:
    head = f"#{step.attempt}.{step.seq} "
    if step.kind == "model":
        text = (f"model {step.model} {step.state}: {step.input_tokens}/{step.output_tokens} "
                f"tokens, {step.finish_reason or '-'}, {step.latency_ms or 0:.0f} ms")
    else:
        policy = step.policy or {}
        verdict = "" if not policy else (" policy: allowed" if policy.get("allowed")
                                         else f" policy: denied by {policy.get('by')}")
        text = f"tool {step.tool} {step.state}{verdict}"
        if step.result:
            text += f" -> {step.result[:120]}"
    if step.error:
        text += f" [{step.error[:160]}]"
    return escape(head + text)
