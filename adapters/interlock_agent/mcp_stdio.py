"""An MCP server over stdio, confined (`docs/agents.md`, "MCP tools"): started from the
argv of its `mcp/<name>` system with no shell, in its own process group, with only the
environment the system declares; its stdout read no further than `max_output_bytes` and
only as JSON-RPC (anything else ends the connection, it is not skipped); the last bytes
of its stderr kept for the error; and the whole group SIGKILLed when the call ends, however
it ends. The `mcp` package's `ClientSession` speaks the protocol over these streams (its own
stdio transport reads lines of any length and inherits part of our environment)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from anyio.abc import ByteReceiveStream, Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, types
from mcp.shared.message import SessionMessage

STDERR_TAIL = 600   # bytes of the server's stderr kept for the error a person reads
CHUNK = 65_536


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    max_output_bytes: int


@dataclass
class Watch:
    """What the server did wrong, in words, and the tail of its stderr."""

    limit: int
    problem: str | None = None
    stderr: bytes = b""
    pids: list[int] = field(default_factory=list)   # the group leader, for the tests' sake


@contextlib.asynccontextmanager
async def connected(launch: Launch, watch: Watch) -> AsyncIterator[ClientSession]:
    """An initialized session with the server; the process group is gone on exit."""
    process = await anyio.open_process(
        launch.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=launch.env, cwd=launch.cwd, start_new_session=True)
    watch.pids.append(process.pid)
    read_w, read_r = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_w, write_r = anyio.create_memory_object_stream[SessionMessage](0)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_read_stdout, process, read_w, watch)
            group.start_soon(_write_stdin, process, write_r)
            group.start_soon(_read_stderr, process, watch)
            try:
                async with ClientSession(read_r, write_w) as session:
                    await session.initialize()
                    yield session
            finally:
                group.cancel_scope.cancel()
    finally:
        kill_group(process.pid)
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            # Its pipes closed and the process reaped: no zombie, no pipe left to the
            # garbage collector (a reader stopped early, over the output bound, left one).
            await process.aclose()


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _read_stdout(process: Process, out: MemoryObjectSendStream[SessionMessage | Exception],
                       watch: Watch) -> None:
    """JSON-RPC messages, one a line, at most `watch.limit` bytes in all; the first thing
    that is not one ends the connection (the session's pending request then fails)."""
    assert process.stdout is not None
    buffer, total = b"", 0
    async with out:
        async for chunk in _chunks(process.stdout):
            total += len(chunk)
            if total > watch.limit:
                watch.problem = (f"wrote more than {watch.limit} bytes on stdout "
                                 "(`mcp.max_output_bytes` of the system); stopped reading")
                return
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                if not line.strip():
                    continue
                try:
                    message = types.JSONRPCMessage.model_validate_json(line)
                except ValueError:
                    watch.problem = ("wrote something that is not JSON-RPC on stdout: "
                                     f"{line[:80]!r}")
                    return
                await out.send(SessionMessage(message))


async def _chunks(stream: ByteReceiveStream) -> AsyncIterator[bytes]:
    with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError,
                             anyio.BrokenResourceError):
        while True:
            yield await stream.receive(CHUNK)


async def _write_stdin(process: Process,
                       messages: MemoryObjectReceiveStream[SessionMessage]) -> None:
    assert process.stdin is not None
    with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
        async with messages:
            async for message in messages:
                text = message.message.model_dump_json(by_alias=True, exclude_none=True)
                await process.stdin.send(text.encode() + b"\n")


async def _read_stderr(process: Process, watch: Watch) -> None:
    assert process.stderr is not None
    async for chunk in _chunks(process.stderr):
        watch.stderr = (watch.stderr + chunk)[-STDERR_TAIL:]
