"""A scripted OpenAI-compatible chat-completions server on a free loopback port: a real
HTTP server (http.server in a thread) answering from a script, so the agent's production
HTTP client is the code path under test. Each script entry is a reply:

    tool_calls(("lookup", {"customer": "c1"}))   -> an assistant message asking for tools
    final({"score": 0.2})                        -> a final answer (JSON text)
    raw(200, b"not json")                        -> exactly these bytes
    a callable(request_body) -> one of the above -> decided on what the agent sent
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted-1"


@dataclass(frozen=True)
class Raw:
    status: int
    body: bytes
    delay_s: float = 0.0


def completion(message: dict[str, Any], finish: str, *, prompt_tokens: int = 12,
               completion_tokens: int = 5, usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion",
        "created": int(time.time()), "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}]}
    if usage:
        body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
    return body


def tool_calls(*calls: tuple[str, Any], **tokens: Any) -> dict[str, Any]:
    return completion({"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{n}_{name}", "type": "function",
         "function": {"name": name,
                      "arguments": args if isinstance(args, str) else json.dumps(args)}}
        for n, (name, args) in enumerate(calls)]}, "tool_calls", **tokens)


def final(answer: Any, **tokens: Any) -> dict[str, Any]:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    return completion({"role": "assistant", "content": text}, "stop", **tokens)


def raw(status: int, body: bytes, delay_s: float = 0.0) -> Raw:
    return Raw(status, body, delay_s)


Entry = dict[str, Any] | Raw | Callable[[dict[str, Any]], Any]


@dataclass
class ScriptedModel:
    script: list[Entry]
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    call_ms: list[float] = field(default_factory=list)   # time spent answering, server side
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_reply(self, body: dict[str, Any]) -> Raw:
        with self.lock:
            self.requests.append(body)
            entry = self.script.pop(0) if self.script else raw(500, b'{"error": "script over"}')
        if callable(entry) and not isinstance(entry, Raw | dict):
            entry = entry(body)
        if isinstance(entry, Raw):
            return entry
        return Raw(200, json.dumps(entry).encode())


def _handler(model: ScriptedModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            started = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            model.headers.append(dict(self.headers))
            reply = model.next_reply(body)
            time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout under test)
            model.call_ms.append((time.perf_counter() - started) * 1000)

        def log_message(self, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serve(script: list[Entry]) -> Iterator[ScriptedModel]:
    model = ScriptedModel(list(script))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(model))
    server.daemon_threads = True
    model.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        server.shutdown()
        server.server_close()
