"""An MCP server over streamable HTTP, confined (`docs/agents.md`, "MCP tools"): reached
only at the `url` its `mcp/<name>` system declares (any other address, a redirect
included, is refused before it is sent), sent only the system's `headers` (secrets by
reference, resolved for the call), its answers read no further than `max_output_bytes` in
all, and the whole exchange stopped at once when it goes over. The `mcp` package's
`streamable_http_client` and `ClientSession` speak the protocol through this client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from anyio import CancelScope
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from interlock_agent.mcp_stdio import Watch

CONNECT_S = 5.0  # a server that does not accept a connection in this long is down


@contextlib.asynccontextmanager
async def connected(url: str, headers: dict[str, str], watch: Watch, *, timeout_s: float,
                    stop: CancelScope) -> AsyncIterator[ClientSession]:
    """An initialized session with the server; ``stop`` is cancelled (and `watch.problem`
    says why) when the server writes more than its bound or the client is sent elsewhere."""
    transport = _Confined(url, watch, stop)
    client = httpx.AsyncClient(transport=transport, headers=headers, follow_redirects=False,
                               timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_S,
                                                                            timeout_s)))
    async with client, streamable_http_client(url, http_client=client) as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


class _Confined(httpx.AsyncBaseTransport):
    """Sends to the declared URL only, and counts every byte of every answer."""

    def __init__(self, url: str, watch: Watch, stop: CancelScope):
        self._url, self._watch, self._stop = httpx.URL(url), watch, stop
        self._inner = httpx.AsyncHTTPTransport()
        self._read = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if _where(request.url) != _where(self._url):
            self._halt(f"was to be sent to {str(request.url)[:200]}, not its declared URL; "
                       "not sent")
            raise httpx.UnsupportedProtocol("not the declared URL", request=request)
        response = await self._inner.handle_async_request(request)
        # A POST's answer is the reply to a request: a connection dropped there means
        # the reply will never come (the SDK would only log it and wait).
        answers = request.method == "POST"
        return httpx.Response(status_code=response.status_code, headers=response.headers,
                              stream=_Counted(response.stream, self, answers=answers),
                              extensions=response.extensions, request=request)

    def count(self, size: int) -> bool:
        self._read += size
        if self._read <= self._watch.limit:
            return True
        self._halt(f"answered more than {self._watch.limit} bytes (`mcp.max_output_bytes` "
                   "of the system); stopped reading")
        return False

    def dropped(self, exc: httpx.TransportError) -> None:
        self._halt(f"dropped the connection before it answered ({type(exc).__name__}: "
                   f"{str(exc)[:120]})")

    def _halt(self, problem: str) -> None:
        self._watch.problem = self._watch.problem or problem
        self._stop.cancel()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _where(url: httpx.URL) -> tuple[str, str, int | None, str]:
    return url.scheme, url.host, url.port, url.path


class _Counted(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: _Confined, *, answers: bool):
        self._inner, self._owner, self._answers = inner, owner, answers

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                if not self._owner.count(len(chunk)):
                    raise httpx.ReadError("over the system's max_output_bytes")
                yield chunk
        except httpx.TransportError as exc:
            if self._answers:
                self._owner.dropped(exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()
