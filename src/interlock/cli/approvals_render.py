"""How approval requests look in a terminal: the inbox as a table, one request with its
evidence, and what a vote did. Everything here reads the API's JSON shape (plain data, times
as ISO strings), which both backends answer."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from interlock.spec.approvals import QuorumRule
from interlock.states import ApprovalState

MAX_JSON = 4000    # characters of one shown value (payload, outputs); --json has it all
MAX_CELL = 80      # characters of a subject or comment in a table
MAX_IMPACT = 10    # downstream items named; the rest counted
SHORT_ID = 9       # characters of a run id in the inbox (`show` and --json have it whole)
STATE_STYLE = {
    ApprovalState.PENDING: "bold yellow", ApprovalState.APPROVED: "green",
    ApprovalState.REJECTED: "bold red", ApprovalState.TIMED_OUT: "red",
    ApprovalState.CANCELLED: "dim", ApprovalState.VOID: "dim",
    ApprovalState.ANSWERED: "cyan",
}


def when(value: object) -> str:
    """A time as `YYYY-MM-DD HH:MM` (UTC as stored), whatever form it came in."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value[:32]
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ""


def styled_state(state: str) -> Text:
    try:
        style = STATE_STYLE.get(ApprovalState(state), "")
    except ValueError:  # a state this client does not know yet: shown plain
        style = ""
    return Text(state, style=style)


def inbox_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="approvals", title_justify="left")
    table.add_column("id", no_wrap=True)  # whole ids: people copy them
    table.add_column("state", min_width=len(ApprovalState.TIMED_OUT.value))
    for column in ("subject", "flow / system", "run / node", "created", "deadline"):
        table.add_column(column, overflow="fold")
    for r in rows:
        run = f"{_cut(str(r['run_id']), SHORT_ID)}/{r.get('node_id') or ''}" \
            if r.get("run_id") else ""
        _row(table, str(r.get("id", "")), styled_state(str(r.get("state", ""))),
             _cut(str(r.get("subject") or ""), MAX_CELL),
             str(r.get("flow") or r.get("system") or ""), run,
             when(r.get("created_at")), when(r.get("deadline")))
    return table


def request_view(r: dict[str, Any]) -> RenderableType:
    """One request with everything a person weighs before deciding."""
    parts: list[RenderableType] = [
        Text.assemble(("request ", "bold"), (str(r.get("id")), "bold"), "  ",
                      styled_state(str(r.get("state", "")))),
        _facts(r)]
    if r.get("body"):
        parts += [Text("\nbody", style="bold"), Text(str(r["body"]))]
    parts += [Text("\npayload (the values the work is submitted with)", style="bold"),
              Text(_json(r.get("payload") or {}))]
    parts.append(_people(r))
    if r.get("votes"):
        parts.append(_votes(r["votes"]))
    parts += _run(r)
    return Group(*parts)


def vote_lines(outcome: dict[str, Any], option: str) -> list[str]:
    """What a vote did: the request's state, the rules it counted toward, what is missing."""
    lines = [f"voted {option} on request {outcome.get('id')}: now {outcome.get('state')}"]
    counted = outcome.get("counted_toward") or []
    if counted:
        lines.append(f"counted toward: {'; '.join(map(str, counted))}")
    tally = str(outcome.get("tally") or "")
    if outcome.get("state") == ApprovalState.PENDING.value:
        lines.append(f"still missing: {tally}")
    elif tally:
        lines.append(tally)
    return lines


def _facts(r: dict[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    rows = [("subject", r.get("subject")), ("origin", r.get("origin")),
            ("flow", r.get("flow")), ("system", r.get("system")),
            ("run", r.get("run_id")), ("node", r.get("node_id")),
            ("created", when(r.get("created_at"))), ("deadline", when(r.get("deadline"))),
            ("escalated", "yes" if r.get("escalated") else None), ("link", r.get("link")),
            ("options", _options(r)), ("decision", r.get("option")),
            ("decided by", ", ".join(r.get("decided_by") or [])),
            ("decided", when(r.get("decided_at"))), ("reason", r.get("reason")),
            ("details", _json(r["details"], indent=None) if r.get("details") else None)]
    for label, value in rows:
        if value:
            _row(grid, label, str(value))
    return grid


def _options(r: dict[str, Any]) -> str:
    rejecting = set(r.get("reject_options") or [])
    return ", ".join(f"{o} (rejects)" if o in rejecting else str(o)
                     for o in r.get("options") or [])


def _people(r: dict[str, Any]) -> RenderableType:
    """Who decides, what is still missing, and who may not decide."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    _row(grid, "rules", "; ".join(_label(rule) for rule in r.get("rules") or []))
    if r.get("escalation_rules"):
        _row(grid, "escalation", "; ".join(_label(x) for x in r["escalation_rules"]))
    tally = r.get("tally") or {}
    if tally.get("missing"):
        missing = "; ".join(f"{rule}: {n} more" for rule, n in tally["missing"].items())
        leading = tally.get("leading_option")
        _row(grid, "missing", missing + (f" (for {leading})" if leading else ""))
    for actor, why in (r.get("excluded") or {}).items():
        _row(grid, "excluded", f"{actor}: {why}")
    for actor, why in (r.get("waived") or {}).items():
        _row(grid, "may approve", f"{actor}: {why}")
    if r.get("inputs"):
        _row(grid, "inputs asked", ", ".join(r["inputs"]))
    if r.get("decision_inputs"):
        _row(grid, "inputs given", _json(r["decision_inputs"], indent=None))
    return Group(Text("\nwho decides", style="bold"), grid)


def _label(raw: object) -> str:
    try:
        return QuorumRule.model_validate(raw).label
    except ValueError:  # a rule this client cannot read: shown as it came
        return _cut(json.dumps(raw, default=str), MAX_CELL)


def _votes(votes: list[dict[str, Any]]) -> Table:
    table = Table(title="votes", title_justify="left")
    for column in ("who", "option", "when", "comment"):
        table.add_column(column, overflow="fold")
    for v in votes:
        _row(table, str(v.get("actor")), str(v.get("option")), when(v.get("at")),
                      _cut(str(v.get("comment") or ""), MAX_CELL))
    return table


def _run(r: dict[str, Any]) -> list[RenderableType]:
    run = r.get("run")
    if not run:
        return []
    trigger = run.get("trigger") or {}
    started = ", ".join(f"{k} {v}" for k, v in trigger.items() if isinstance(v, str | int))
    parts: list[RenderableType] = [
        Text("\nrun", style="bold"),
        Text(f"{run.get('id')}  {run.get('flow')} r{run.get('revision')}  {run.get('state')}"
             f"  started {when(run.get('created_at'))} ({started or 'trigger unknown'})"),
        Text(f"inputs: {_json(run.get('inputs') or {}, indent=None)}")]
    upstream = r.get("upstream") or {}
    if upstream:
        table = Table(title="upstream", title_justify="left")
        for column in ("node", "state", "outputs"):
            table.add_column(column, overflow="fold")
        for node, seen in upstream.items():
            outputs = _json(seen["outputs"], indent=None) if "outputs" in seen \
                else "(needs outputs:read)"
            _row(table, str(node), str(seen.get("state")), outputs)
        parts.append(table)
    parts.append(_impact(r.get("impact")))
    return parts


def _impact(impact: dict[str, Any] | None) -> Text:
    if impact is None:
        return Text("impact: unknown (lineage has no record of this node yet)")
    flows, datasets = impact.get("flows") or [], impact.get("datasets") or []
    names = [str(d.get("name")) for d in datasets[:MAX_IMPACT]]
    more = f" and {len(datasets) - MAX_IMPACT} more" if len(datasets) > MAX_IMPACT else ""
    jobs = sum(len(found) for found in (impact.get("jobs") or {}).values())
    return Text(f"impact downstream: {jobs} job(s); flows {', '.join(flows) or 'none'}; systems "
                f"{', '.join(impact.get('systems') or []) or 'none'}; datasets "
                f"{', '.join(names) or 'none'}{more}"
                + (" (truncated)" if impact.get("truncated") else ""))


def _row(table: Table, *cells: str | Text) -> None:
    """A row of data: text from flows and people is never read as Rich markup."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))


def _json(value: object, indent: int | None = 2) -> str:
    return _cut(json.dumps(value, indent=indent, default=str, ensure_ascii=False), MAX_JSON)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
