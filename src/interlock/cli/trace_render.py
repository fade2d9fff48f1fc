"""How a trace looks in a terminal: a tree, a text Gantt, and the root cause."""

from __future__ import annotations

import math
from datetime import datetime

from rich.console import Group
from rich.panel import Panel
from rich.text import Text
from rich.tree import Tree

from interlock import clock
from interlock.cli.render import STATE_STYLE
from interlock.states import NodeState, RunState
from interlock.trace.model import NodeTrace, RootCause, RunTrace, Span, SpanKind

LABEL_WIDTH = 26
INFO_WIDTH = 18           # "+12m03s  1h02m" and a little room
MIN_BAR_WIDTH = 10
EXCERPT_LINES = 12
BAR, OPEN_BAR, INSTANT = "█", "▒", "▏"
AGENT_KINDS = frozenset({SpanKind.MODEL, SpanKind.TOOL, SpanKind.APPROVAL})


def state_text(kind: SpanKind | None, state: str) -> Text:
    """A state in the colours `interlock status` uses."""
    try:
        known: NodeState | RunState = RunState(state) if kind is SpanKind.RUN else NodeState(state)
    except ValueError:
        return Text(state)
    return Text(state, style=STATE_STYLE.get(known, ""))  # type: ignore[call-overload]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


# --- tree ---------------------------------------------------------------------------------


def trace_tree(trace: RunTrace) -> Tree:
    """Runs (upstream first) -> nodes -> attempts -> foreign runs the attempts started."""
    spans = {s.id: s for s in trace.spans}
    children: dict[str | None, list[Span]] = {}
    for span in trace.spans:
        parent = span.parent_id if span.parent_id in spans else None
        children.setdefault(parent, []).append(span)
    tree = Tree(Text(f"trace of run {trace.run.id}", style="bold"), guide_style="dim")
    for root in children.get(None, []):
        _grow(tree, root, trace, children)
    return tree


def _grow(branch: Tree, span: Span, trace: RunTrace,
          children: dict[str | None, list[Span]]) -> None:
    here = branch.add(_span_label(span, traced=span.run_id == trace.run.id))
    if span.kind is SpanKind.RUN:
        attempts = {s.id: s for s in children.get(span.id, []) if s.kind is SpanKind.ATTEMPT}
        for node in (n for n in trace.nodes if n.run_id == span.run_id):
            _grow_node(here, node, attempts, trace, children)
    for child in children.get(span.id, []):
        if child.kind is not SpanKind.ATTEMPT or span.kind is not SpanKind.RUN:
            _grow(here, child, trace, children)


def _grow_node(branch: Tree, node: NodeTrace, attempts: dict[str, Span], trace: RunTrace,
               children: dict[str | None, list[Span]]) -> None:
    label = Text.assemble((node.id, "bold"), f" ({node.uses}) ", state_text(None, node.state))
    if node.reason and not node.attempts:
        label.append(f"  {node.reason}", style="dim")
    here = branch.add(label)
    for span_id in node.attempts:
        if span_id in attempts:
            _grow(here, attempts[span_id], trace, children)


def _span_label(span: Span, *, traced: bool) -> Text:
    if span.kind is SpanKind.RUN:
        head = Text.assemble(("run ", "bold" if traced else ""), (span.label, "bold"),
                             f" {span.run_id} ")
    elif span.kind is SpanKind.ATTEMPT:
        head = Text(f"attempt {span.attempt} ")
    elif span.kind in AGENT_KINDS:  # an agent's step: what it was, not its key
        head = Text.assemble((span.label, "bold"), " ")
    else:
        head = Text.assemble((span.label, "bold"), f" {span.external_id} ")
    head.append_text(state_text(span.kind, span.state))
    if span.remote_status and span.remote_status != span.state:
        head.append(f" ({span.remote_status})", style="dim")
    head.append(f"  {duration(span.duration_s)}")
    if span.upstream and span.kind is SpanKind.RUN:
        head.append("  upstream", style="italic dim")
    if span.error:
        head.append(f"  {_first_line(span.error)}", style="red")
    if span.deep_link:
        head.append(f"  {span.deep_link}", style="dim underline")
    return head


def _first_line(text: str, limit: int = 120) -> str:
    line = next((x.strip() for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


# --- timeline -----------------------------------------------------------------------------


def timeline(trace: RunTrace, *, width: int, now: datetime | None = None) -> Group:
    """One bar per span, placed by its start and scaled to ``width`` columns."""
    end = trace.finished_at or now or clock.now()
    ends = [t for s in trace.spans for t in (s.started_at, s.finished_at) if t is not None]
    end = max([end, *ends])
    total = max((end - trace.started_at).total_seconds(), 1e-3)
    bar_width = max(width - LABEL_WIDTH - INFO_WIDTH - 2, MIN_BAR_WIDTH)
    axis = Text(" " * (LABEL_WIDTH + 1) + "0s".ljust(bar_width - 8) + duration(total).rjust(8),
                style="dim")
    rows = [_row(s, trace, end, total, bar_width) for s in trace.spans]
    return Group(Text("timeline", style="bold"), axis, *rows)


def _row(span: Span, trace: RunTrace, end: datetime, total: float, bar_width: int) -> Text:
    row = Text(_fit(_row_label(span), LABEL_WIDTH) + " ")
    if span.started_at is None:
        return row.append(" " * bar_width + " not started / unknown", style="dim")
    offset = (span.started_at - trace.started_at).total_seconds()
    stop = ((span.finished_at or end) - trace.started_at).total_seconds()
    left = min(int(offset / total * bar_width), bar_width - 1)
    right = max(left + 1, min(math.ceil(stop / total * bar_width), bar_width))
    glyph = BAR if span.finished_at else OPEN_BAR
    glyph = INSTANT if span.finished_at and stop - offset < total / bar_width / 4 else glyph
    style = state_text(span.kind, span.state).style or "white"
    row.append(" " * left).append(glyph * (right - left), style=style)
    row.append(" " * (bar_width - right))
    return row.append(f" +{duration(offset)} {duration(span.duration_s)}", style="dim")


def _row_label(span: Span) -> str:
    mark = "↑ " if span.upstream else ""
    if span.kind is SpanKind.RUN:
        return f"{mark}{span.label}"
    if span.kind is SpanKind.ATTEMPT:
        return f"{mark}  {span.node_id} #{span.attempt}"
    if span.kind is SpanKind.APPROVAL:  # under an agent's tool call
        return f"{mark}      ↳ {span.label}"
    under_attempt = (span.parent_id or "").startswith("attempt:")
    return f"{mark}    ↳ {span.label}" if under_attempt else f"{mark}{span.label}"


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[:width - 1] + "…"


# --- root cause ---------------------------------------------------------------------------


def cause_block(trace: RunTrace) -> Panel:
    cause = trace.root_cause
    notes = [Text(f"note: {n}", style="yellow") for n in trace.notes]
    if cause is None:
        return Panel(Group(*_no_cause(trace), *notes), title="root cause", title_align="left")
    return Panel(Group(*_cause_lines(cause), *notes), title="root cause", title_align="left",
                 border_style="red")


def _no_cause(trace: RunTrace) -> list[Text]:
    if trace.run.state is RunState.FAILED:
        return [Text("the run failed, but no failed node or upstream failure was found",
                     style="yellow")]
    lines = [Text(f"run {trace.run.id} has not failed", style="green")]
    failed_upstream = [s for s in trace.spans if s.upstream and s.kind is SpanKind.RUN
                       and s.state == RunState.FAILED.value]
    lines += [Text(f"it was triggered by failed run {s.run_id}: `interlock trace {s.run_id}` "
                   "shows why that failed", style="dim") for s in failed_upstream[-1:]]
    return lines


def _cause_lines(cause: RootCause) -> list[Text]:
    where = cause.node_id or "-"
    lines = [Text.assemble(("node    ", "dim"), (where, "bold red"),
                           f"  (run {cause.run_id})" if cause.run_id else "  (foreign run)"),
             Text.assemble(("system  ", "dim"), cause.system or f"interlock ({cause.uses})")]
    if cause.external_id:
        lines.append(Text.assemble(("id      ", "dim"), cause.external_id))
    if cause.at:
        lines.append(Text.assemble(("at      ", "dim"), cause.at.isoformat(timespec="seconds")))
    lines.append(Text.assemble(("error   ", "dim"), (cause.error or "-", "red")))
    if cause.deep_link:
        lines.append(Text.assemble(("link    ", "dim"), (cause.deep_link, "underline")))
    lines += [Text.assemble(("why     " if i == 0 else "        ", "dim"), f"{i + 1}. {step}")
              for i, step in enumerate(cause.path)]
    if cause.also_failed:
        lines.append(Text.assemble(("also    ", "dim"), ", ".join(cause.also_failed)))
    if cause.log_excerpt:
        tail = cause.log_excerpt.rstrip("\n").splitlines()[-EXCERPT_LINES:]
        lines += [Text("log excerpt", style="dim"), *(Text(f"  {x}") for x in tail)]
    return lines
