"""Request limits, checked before any route sees the request (one ASGI middleware).

- A body larger than `INTERLOCK_MAX_BODY_BYTES` is answered 413 before it is buffered: a
  `Content-Length` over the limit is refused without reading a byte, and a chunked body is
  counted as it streams and refused at the first byte past the limit.
- A body nested deeper than `MAX_JSON_DEPTH` (`[`/`{` outside strings, counted as the bytes
  stream) is answered 400 before any JSON parser or route sees it.
- A request a browser can forge on a mutating method (POST, PUT, PATCH, DELETE) is refused:
  the content types an HTML form may send (`application/x-www-form-urlencoded`,
  `multipart/form-data`, `text/plain`) get 415, and an `Origin` that is neither this host
  nor in `INTERLOCK_ALLOWED_ORIGINS` gets 403.

When the limit is crossed mid-body the middleware answers itself and stops the route
(whatever the route would have sent afterwards is dropped), so nothing is stored. Each
refusal is told to `on_refused` after the answer is sent (a pushed event refused here is
still audited, `interlock.api.routes.events.audit_refused`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interlock.config.env import settings
from interlock.config.limits import MAX_JSON_DEPTH

log = logging.getLogger(__name__)
# Told of each refusal: (scope, status, detail, body bytes declared or read, if known).
OnRefused = Callable[[Scope, int, str, int | None], Awaitable[None]]
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})


class _Stop(Exception):
    """Raised into the route when the middleware has answered for it."""


class _DepthScanner:
    """Counts JSON nesting across chunks: brackets outside strings."""

    def __init__(self, limit: int):
        self.limit, self.depth, self.in_string, self.escaped = limit, 0, False, False

    def feed(self, chunk: bytes) -> bool:
        """False once the nesting went past the limit."""
        if not self.in_string and b"[" not in chunk and b"{" not in chunk and b'"' not in chunk:
            return True  # fast path: nothing to count (closing brackets only lower it)
        for byte in chunk:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif byte == 0x5C:    # backslash
                    self.escaped = True
                elif byte == 0x22:    # "
                    self.in_string = False
            elif byte == 0x22:
                self.in_string = True
            elif byte in (0x5B, 0x7B):  # [ {
                self.depth += 1
                if self.depth > self.limit:
                    return False
            elif byte in (0x5D, 0x7D):  # ] }
                self.depth -= 1
        return True


class RequestLimits:
    """The ASGI middleware; `allowed_origins` and `max_body` default to the settings."""

    def __init__(self, app: ASGIApp, *, max_body: int | None = None,
                 allowed_origins: Iterable[str] | None = None,
                 on_refused: OnRefused | None = None) -> None:
        config = settings()
        self.app, self.on_refused = app, on_refused
        self.max_body = config.max_body_bytes if max_body is None else max_body
        given = config.allowed_origins if allowed_origins is None else allowed_origins
        self.allowed = frozenset(o.rstrip("/").lower() for o in given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            length = headers.get("content-length", "")
            await self._tell(scope, *refusal, int(length) if length.isdigit() else None)
            return
        await self._guarded(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if scope["method"] in MUTATING:
            media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media in FORM_TYPES:
                return 415, (f"content type {media} is not accepted: send "
                             "application/json (form and text bodies can be forged by any "
                             "web page)")
            origin = headers.get("origin")
            if origin is not None and not self._same_site(origin, headers.get("host", "")):
                return 403, ("cross-site request refused: the Origin is neither this host "
                             "nor in INTERLOCK_ALLOWED_ORIGINS")
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit() or not length.isascii():
                return 400, "Content-Length is not a number"
            if int(length) > self.max_body:
                return 413, self._too_large()
        return None

    async def _tell(self, scope: Scope, status: int, detail: str, size: int | None) -> None:
        if self.on_refused is None:
            return
        try:
            await self.on_refused(scope, status, detail, size)
        except Exception:  # the answer is sent; a failing listener is logged, not raised
            log.exception("recording the refusal of %s failed", scope.get("path"))

    def _same_site(self, origin: str, host: str) -> bool:
        if origin.rstrip("/").lower() in self.allowed:
            return True
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            return False
        return bool(netloc) and netloc == host.strip().lower()

    def _too_large(self) -> str:
        return (f"the request body is larger than {self.max_body} bytes "
                "(INTERLOCK_MAX_BODY_BYTES)")

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = {"read": 0, "answered": False, "started": False}
        depth = _DepthScanner(MAX_JSON_DEPTH)

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or state["answered"]:
                return message
            chunk = message.get("body", b"")
            state["read"] += len(chunk)
            if state["read"] > self.max_body:
                await stop(413, self._too_large())
            if not depth.feed(chunk):
                await stop(400, f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
            return message

        async def stop(status: int, detail: str) -> None:
            if not state["started"]:
                state["answered"] = True
                await _answer(send, status, detail)
                await self._tell(scope, status, detail, state["read"])
            raise _Stop

        async def guarded_send(message: Message) -> None:
            if state["answered"]:
                return  # the middleware answered already; drop the route's own answer
            state["started"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:  # _Stop, or what a route made of it, after the middleware answered
            if not state["answered"]:
                raise


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
