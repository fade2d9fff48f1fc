"""How runs look in a terminal."""

from __future__ import annotations

import json
from datetime import UTC

from rich.table import Table
from rich.text import Text

from interlock.states import NodeState, RunState
from interlock.store.views import DeadlinePublic, NodePublic, RunDetail, RunSummary

STATE_STYLE = {
    NodeState.PENDING: "dim", NodeState.QUEUED: "cyan", NodeState.RUNNING: "bold cyan",
    NodeState.RETRY_WAIT: "yellow", NodeState.SUCCEEDED: "green", NodeState.FAILED: "bold red",
    NodeState.TIMED_OUT: "red", NodeState.LOST: "magenta", NodeState.SKIPPED: "dim",
    NodeState.CANCELLED: "yellow",
    RunState.CANCELLING: "yellow",
}


def styled(state: NodeState | RunState) -> Text:
    return Text(state.value, style=STATE_STYLE.get(state, ""))  # type: ignore[call-overload]


def run_table(run: RunDetail) -> Table:
    title = Text.assemble(f"run {run.id}  {run.namespace}/{run.flow_id} r{run.revision}  ",
                          styled(run.state))
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("node", "uses", "state", "attempt", "outputs / error"):
        table.add_column(column, overflow="fold")
    for node in run.nodes:
        last = node.attempts[-1] if node.attempts else None
        table.add_row(node.id, node.uses, styled(node.state), str(last.number) if last else "",
                      _detail(node)[:160])
    if run.deadlines:
        table.caption = "\n".join(_deadline(d) for d in run.deadlines)
        table.caption_justify = "left"
    return table


def _deadline(d: DeadlinePublic) -> str:
    """`deadline (run): LATE, due 2026-11-24 05:30Z` / `... at risk: estimate ..., cause x`."""
    due = d.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if d.due_at else "not started"
    line = f"deadline ({d.node or 'run'}): {d.state.upper() if d.state == 'late' else d.state}, "
    line += f"due {due}"
    if d.at_risk:
        estimate = d.estimate_at.astimezone(UTC).strftime("%H:%M:%SZ") if d.estimate_at else "?"
        line += f"; at risk: estimated finish {estimate}, cause {d.cause or '?'}"
    return line


def _detail(node: NodePublic) -> str:
    if node.error:
        return node.error
    if node.outputs:
        return json.dumps(node.outputs, default=str)
    return node.reason or ""


def runs_table(runs: list[RunSummary]) -> Table:
    table = Table(title="runs", title_justify="left")
    table.add_column("run", no_wrap=True, min_width=32)  # whole ids: people copy them
    for column in ("flow", "rev", "state", "created", "reason"):
        table.add_column(column)
    for r in runs:
        table.add_row(r.id, f"{r.namespace}/{r.flow_id}", str(r.revision), styled(r.state),
                      r.created_at.strftime("%Y-%m-%d %H:%M:%S"), (r.reason or "")[:60])
    return table
