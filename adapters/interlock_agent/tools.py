"""Running a governed tool call, idempotent on the step's key: a flow tool's run is started
once per key (a second call finds the first run), an action's adapter `submit` is idempotent
on the key. So a step a dead worker left `started` is resumed, never repeated."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from interlock.adapters import (
    InterlockError,
    JobSpec,
    NodeState,
    Observation,
    Rejected,
    Transient,
    default_registry,
)
from interlock.adapters.agents import AgentHost
from interlock.adapters.contract import Handle
from interlock_agent import mcp_tools
from interlock_agent.params import Tool

MAX_RESULT_CHARS = 8192  # what the model is told of a tool's result
MCP_CALLING = "mcp:calling"  # an MCP step's ref once its call may have reached the server


@dataclass(frozen=True)
class Progress:
    done: bool
    result: str = ""          # told to the model once done
    ref: str | None = None    # what to look at next time (a run id, a handle as JSON)
    error: str | None = None  # the tool failed (told to the model too)


def advance(tool: Tool, arguments: dict[str, Any], *, key: str, ref: str | None,
            host: AgentHost, run_id: str, node_id: str, attempt: int,
            traceparent: str) -> Progress:
    try:
        if tool.flow is not None:
            return _flow(tool, arguments, key=key, ref=ref, host=host, run_id=run_id,
                         node_id=node_id)
        if tool.mcp is not None:
            return _mcp(tool, arguments, key=key, ref=ref, host=host)
        return _action(tool, arguments, key=key, ref=ref, run_id=run_id, node_id=node_id,
                       attempt=attempt, traceparent=traceparent)
    except Transient:
        return Progress(done=False, ref=ref)
    except InterlockError as exc:  # refused inputs, an unknown flow or system: the model's to read
        text = f"the tool failed: {str(exc)[:1000]}"
        return Progress(done=True, result=text, ref=ref, error=text)


def _flow(tool: Tool, arguments: dict[str, Any], *, key: str, ref: str | None,
          host: AgentHost, run_id: str, node_id: str) -> Progress:
    assert tool.flow is not None
    child = ref or host.start_flow(key=key, namespace=tool.flow.namespace,
                                   flow_id=tool.flow.id, inputs=arguments,
                                   parent={"run_id": run_id, "node_id": node_id})
    seen = host.flow_progress(child)
    if not seen.finished:
        return Progress(done=False, ref=child)
    body = {"run_id": child, "state": seen.state, "outputs": seen.outputs}
    if seen.error:
        body["error"] = seen.error
    error = None if seen.state == "succeeded" else f"the flow run {child} {seen.state}"
    return Progress(done=True, result=bounded(body), ref=child, error=error)


def _mcp(tool: Tool, arguments: dict[str, Any], *, key: str, ref: str | None,
         host: AgentHost) -> Progress:
    """One call on a freshly started server. MCP has no idempotency of its own (the key
    goes in `_meta` for servers that honour it), so a call a dead worker may have made is
    not made again unless the tool is read-only; the model is told instead."""
    assert tool.mcp is not None
    if ref == MCP_CALLING and tool.mcp.read_only_by is None:
        text = ("the tool's result is unknown: the worker running this call stopped, and "
                "Interlock does not call a tool that changes things twice")
        return Progress(done=True, result=text, ref=ref, error=text)
    session_key, _, seq = key.rpartition(".s")  # the step key is `<session key>.s<seq>`
    host.note(session_key, seq=int(seq), ref=MCP_CALLING)
    called = mcp_tools.call(tool, arguments, key=key)
    return Progress(done=True, result=bounded(called.body), ref=MCP_CALLING,
                    error=called.error)


def _action(tool: Tool, arguments: dict[str, Any], *, key: str, ref: str | None,
            run_id: str, node_id: str, attempt: int, traceparent: str) -> Progress:
    action = tool.action
    assert action is not None
    adapter = default_registry().get(action.uses)
    if ref is None:
        params = dict(action.with_)
        if action.arguments_to:
            given = params.get(action.arguments_to)
            params[action.arguments_to] = {**(given if isinstance(given, dict) else {}),
                                           **arguments}
        try:
            adapter.params_model.model_validate(params)
        except ValueError as exc:
            raise Rejected(f"invalid `with:` for uses: {action.uses}: {exc}") from None
        job = JobSpec(run_id=run_id, node_id=node_id, attempt=attempt, params=params,
                      traceparent=traceparent)
        got = adapter.submit(job, key=key)
    else:
        seen = adapter.poll([Handle(**json.loads(ref))])
        if not seen:  # its system did not answer this time (skipped): look again next poll
            return Progress(done=False, ref=ref)
        got = seen[0]
    handle = got.handle if isinstance(got, Observation) else got
    ref = json.dumps(asdict(handle), default=str)
    if not isinstance(got, Observation) or not got.finished:
        return Progress(done=False, ref=ref)
    body = {"state": got.state.value, "outputs": got.outputs}
    if got.error:
        body["error"] = got.error
    error = None if got.state is NodeState.SUCCEEDED else f"the action {got.state.value}"
    return Progress(done=True, result=bounded(body), ref=ref, error=error)


def bounded(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"… (cut: {len(text)} characters)"
