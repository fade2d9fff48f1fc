"""A tool call, before it runs, in order (`docs/agents.md`): the allow-list and the shape
of its arguments, the policies' `tool` point, then whether the tool's `approval:` asks
people (the loop opens the request and parks the session). Each refusal is a sentence the
model reads as the tool's result; the agent may go on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from interlock.adapters.agents import AgentHost, Usage
from interlock_agent.approval import ToolApproval, needed
from interlock_agent.params import AgentParams, Tool
from interlock_agent.wire import ToolCall

MAX_ARGUMENTS_BYTES = 16_384


@dataclass(frozen=True)
class Verdict:
    tool: Tool | None
    arguments: dict[str, Any] | None
    refused: str | None = None                  # told to the model, recorded
    policy: dict[str, Any] | None = None        # {allowed, by, message}
    approval: ToolApproval | None = None        # people must approve it before it runs


def govern(call: ToolCall, params: AgentParams, *, host: AgentHost, run_id: str,
           node_id: str, used: Usage) -> Verdict:
    tool = params.tool(call.name)
    if tool is None:  # whatever the prompt said: only declared tools exist
        offered = ", ".join(t.name for t in params.tools) or "none"
        return Verdict(None, None, f"refused: there is no tool {call.name[:64]!r} (tools: "
                                   f"{offered})")
    arguments, problem = _arguments(call.arguments, tool)
    if problem is not None:
        return Verdict(tool, arguments, f"refused: {problem}")
    assert arguments is not None
    seen = {"name": tool.name, "kind": tool.kind, "target": tool.target,
            "arguments": arguments,
            "approval": "none" if needed(tool.approval) is None else "required",
            "arguments_bytes": len(json.dumps(arguments).encode())}
    agent = {"system": params.system, "model": params.model,
             "tool_calls": used.tool_calls, "model_requests": used.model_requests}
    decided = host.tool_policy(run_id=run_id, node_id=node_id, tool=seen, agent=agent)
    policy = {"allowed": decided.allowed, "by": decided.by, "message": decided.message,
              "rules": decided.decisions}
    if not decided.allowed:
        return Verdict(tool, arguments, f"denied by {decided.by}: {decided.message}", policy)
    return Verdict(tool, arguments, None, policy, approval=needed(tool.approval))


def _arguments(text: str, tool: Tool) -> tuple[dict[str, Any] | None, str | None]:
    size = len(text.encode())
    if size > MAX_ARGUMENTS_BYTES:
        return None, f"the arguments are {size} bytes; at most {MAX_ARGUMENTS_BYTES}"
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return None, "the arguments are not JSON"
    if not isinstance(value, dict):
        return None, "the arguments are not a JSON object"
    errors = sorted(Draft202012Validator(tool.parameters).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        return value, f"the arguments do not fit the tool's parameters: {where}: " \
                      f"{errors[0].message[:300]}"
    return value, None
