"""MCP tools of `uses: agent` (`docs/agents.md`, "MCP tools").

When the session starts, `expand` replaces each `- mcp: {server, tools}` entry by one
`Tool` per listed name, taken from the server's own list: its description (cut to 2000
characters), its input schema (at most 16 KB, a JSON Schema of an object), the SHA-256 of
both, and its approval. A listed tool the server does not offer fails the node.

`call` runs one call: the server is started (stdio, `mcp_stdio`) or connected to at its
declared URL (streamable HTTP, `mcp_http`), its list is read again (a tool gone, or whose
description or schema changed since the session started, is not called), the call is made
with the step's idempotency key in `_meta`, and the server's process group is killed (or
the HTTP session closed). A server that cannot start or be reached, hangs past the
system's `timeout`, writes more than `max_output_bytes`, anything that is not JSON-RPC, or
drops the connection of its reply is a tool error the model reads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import httpx
from mcp import ClientSession, McpError, types

from interlock.adapters import Rejected, System, registered
from interlock.adapters.masking import Masker
from interlock_agent import mcp_http, mcp_stdio
from interlock_agent.mcp_stdio import Launch, Watch
from interlock_agent.params import MAX_TOOLS, AgentParams, McpServerTools, McpTarget, Tool

KIND = "mcp"
MAX_DESCRIPTION = 2000
MAX_LISTED = 1000          # tools read from one server's list (pages included)
MAX_PARTS = 32             # content parts of a result told to the model
META_KEY = "io.interlock/idempotency_key"
T = TypeVar("T")


class ServerFailed(Rejected):
    """The MCP server did not do its part (start, answer in time, speak JSON-RPC)."""


@dataclass(frozen=True)
class Called:
    body: dict[str, Any]      # what the model reads (bounded by the caller)
    error: str | None         # the call did not happen, or the tool said it failed
    pid: int | None = None    # the server's process (gone by now)


def expand(params: AgentParams) -> AgentParams:
    """The params with every MCP allow-list expanded; Rejected (the node fails) when a
    server cannot be listed or lacks a tool."""
    for entry in params.tools:  # only `expand` writes these: a flow's would skip the rules
        if isinstance(entry, Tool) and entry.mcp is not None:
            raise Rejected(f"tool `{entry.name}`: MCP tools are declared as `- mcp: "
                           "{server: mcp/<name>, tools: [...]}`, never as `mcp:` of a tool")
    if not params.toolsets():
        return params
    tools: list[Tool] = []
    for entry in params.tools:
        tools += [entry] if isinstance(entry, Tool) else _expanded(entry.mcp)
    if len(tools) > MAX_TOOLS:
        raise Rejected(f"the agent has {len(tools)} tools; at most {MAX_TOOLS}")
    body = params.model_dump(by_alias=True)
    body["tools"] = [t.model_dump(by_alias=True) for t in tools]
    return AgentParams.model_validate(body)


def _expanded(declared: McpServerTools) -> list[Tool]:
    system = registered(declared.server, kind=KIND)
    listed = _session(system, _listing).value
    missing = [n for n in declared.tools if n not in listed]
    if missing:
        offered = ", ".join(sorted(listed)[:30]) or "none"
        raise Rejected(f"{system.name} does not offer {', '.join(missing)} (it offers: "
                       f"{offered}); fix the agent's `tools:` or the server")
    return [_tool(system, declared, listed[name]) for name in declared.tools]


def _tool(system: System, declared: McpServerTools, offered: types.Tool) -> Tool:
    settings = system.mcp
    assert settings is not None
    hints = offered.annotations
    read_only_by = ("flow" if offered.name in declared.read_only
                    else "system" if offered.name in settings.read_only
                    else "trusted-server" if settings.trusted and hints is not None
                    and hints.readOnlyHint is True else None)
    description = offered.description or ""
    if len(description) > MAX_DESCRIPTION:
        description = description[:MAX_DESCRIPTION - 1] + "…"
    try:
        return Tool(name=offered.name, description=description,
                    parameters=offered.inputSchema,
                    mcp=McpTarget(server=system.name, tool=offered.name,
                                  schema_sha256=digest(offered), read_only_by=read_only_by),
                    approval="none" if read_only_by else declared.approval)
    except ValueError as exc:
        raise Rejected(f"{system.name} tool {offered.name}: {str(exc)[:500]}") from None


def digest(offered: types.Tool) -> str:
    """What the session pinned of a tool: its description, input schema and hints."""
    seen = {"description": offered.description, "inputSchema": offered.inputSchema,
            "annotations": offered.annotations.model_dump() if offered.annotations else None}
    return hashlib.sha256(json.dumps(seen, sort_keys=True, default=str).encode()).hexdigest()


def call(tool: Tool, arguments: dict[str, Any], *, key: str) -> Called:
    """Call the tool once on a freshly started server; never raises for the server's faults."""
    target = tool.mcp
    assert target is not None
    system = registered(target.server, kind=KIND)

    async def work(session: ClientSession) -> Called:
        offered = (await _listing(session)).get(target.tool)
        if offered is None:
            return _refused(f"{system.name} no longer offers {target.tool}; not called")
        if digest(offered) != target.schema_sha256:
            return _refused(f"{system.name} changed the description, input schema or hints of "
                            f"{target.tool} since the session started; not called")
        result = await session.call_tool(target.tool, arguments, meta={META_KEY: key})
        body = _summary(result)
        return Called(body, f"{system.name} {target.tool} answered an error"
                      if result.isError else None)

    try:
        ran = _session(system, work)
    except ServerFailed as exc:
        return Called({"error": str(exc)}, str(exc))
    called: Called = ran.value
    return Called(json.loads(ran.mask.text(json.dumps(called.body))),
                  ran.mask.text(called.error) if called.error else None, ran.pid)


def _refused(text: str) -> Called:
    return Called({"error": text}, text)


def _summary(result: types.CallToolResult) -> dict[str, Any]:
    parts: list[Any] = []
    for part in result.content[:MAX_PARTS]:
        if isinstance(part, types.TextContent):
            parts.append(part.text)
        else:  # images, audio, resources: named, not passed on
            parts.append({"type": part.type, "omitted": "not text"})
    body: dict[str, Any] = {"content": parts}
    if len(result.content) > MAX_PARTS:
        body["parts_omitted"] = len(result.content) - MAX_PARTS
    if result.structuredContent is not None:
        body["structured"] = result.structuredContent
    if result.isError:
        body["is_error"] = True
    return body


async def _listing(session: ClientSession) -> dict[str, types.Tool]:
    found: dict[str, types.Tool] = {}
    cursor: str | None = None
    while len(found) < MAX_LISTED:
        page = await session.list_tools(params=types.PaginatedRequestParams(cursor=cursor)
                                        if cursor else None)
        found.update((t.name, t) for t in page.tools[:MAX_LISTED])
        cursor = page.nextCursor
        if not cursor:
            break
    return found


# -- one session with a server ------------------------------------------------------------

@dataclass(frozen=True)
class Ran:
    value: Any
    mask: Masker
    pid: int | None


def _session(system: System, work: Callable[[ClientSession], Awaitable[T]]) -> Ran:
    """Reach the server (start it, or connect to its URL), run ``work`` in an initialized
    session, and let it go (its process group killed, or the HTTP session closed)."""
    settings = system.mcp
    assert settings is not None
    watch = Watch(limit=settings.max_output_bytes)
    env = {k: v if isinstance(v, str) else v.resolve(system=system.name)
           for k, v in settings.env.items()}
    headers = system.header_values()
    # Resolved once: what the server is given, and what is masked in what it says.
    mask = Masker([env[k] for k, v in settings.env.items() if not isinstance(v, str)]
                  + [headers[k] for k, v in system.headers.items() if not isinstance(v, str)])
    connect = _stdio(system, watch, env) if settings.command else _http(system, watch, headers)

    async def main() -> T:
        with anyio.fail_after(system.timeout):
            with anyio.CancelScope() as stop:  # cancelled by the HTTP client over a bound
                async with connect(stop) as session:
                    return await work(session)
            raise ServerFailed(watch.problem or "stopped")

    try:
        value = _blocking(main)
    except BaseException as exc:  # noqa: BLE001  (anyio groups what went wrong)
        raise ServerFailed(mask.text(_failure(system, _leaf(exc), watch))) from None
    return Ran(value, mask, watch.pids[0] if watch.pids else None)


Connect = Callable[[anyio.CancelScope], AbstractAsyncContextManager[ClientSession]]


def _stdio(system: System, watch: Watch, env: dict[str, str]) -> Connect:
    settings = system.mcp
    assert settings is not None and settings.command
    launch = Launch(argv=list(settings.command), env=env, max_output_bytes=
                    settings.max_output_bytes, cwd=str(settings.cwd) if settings.cwd else None)
    return lambda stop: mcp_stdio.connected(launch, watch)


def _http(system: System, watch: Watch, headers: dict[str, str]) -> Connect:
    return lambda stop: mcp_http.connected(system.url, headers, watch,
                                           timeout_s=system.timeout, stop=stop)


def _failure(system: System, exc: BaseException, watch: Watch) -> str:
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        raise exc
    stderr = watch.stderr.decode("utf-8", "replace").strip()
    said = f"; its stderr ends: {stderr[-300:]!r}" if stderr else ""
    ended = "its process group was killed" if watch.pids else "the connection was closed"
    if watch.problem:
        return f"MCP server {system.name} {watch.problem}; {ended}"
    if isinstance(exc, TimeoutError):
        return (f"MCP server {system.name} did not answer within {system.timeout:g}s (the "
                f"system's `timeout`); {ended}{said}")
    if isinstance(exc, httpx.TransportError) and system.url:
        return (f"MCP server {system.name} could not be reached at {system.url}: "
                f"{type(exc).__name__}: {str(exc)[:200]}")
    if isinstance(exc, httpx.HTTPStatusError):
        return (f"MCP server {system.name} answered HTTP {exc.response.status_code} at "
                f"{system.url}: {str(exc)[:200]}")
    if isinstance(exc, OSError) and not watch.pids:
        return f"MCP server {system.name} could not start: {exc.strerror or exc}"
    if isinstance(exc, McpError):
        return f"MCP server {system.name}: {exc.error.message[:300]}{said}"
    return f"MCP server {system.name} failed: {type(exc).__name__}: {str(exc)[:300]}{said}"


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _blocking(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main`` to its end from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(main)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, main).result()
