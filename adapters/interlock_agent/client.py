"""One chat-completions request over HTTP (httpx): the system's base URL and key, a
timeout, and an answer read no further than the system's `max_response_bytes`."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from interlock.adapters import Rejected, SessionPool, System, Transient
from interlock.adapters.masking import Masker
from interlock_agent.wire import Garbage, Reply, parse

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# One client per system: its connections (and TLS context) are reused across requests.
_clients: SessionPool[httpx.Client] = SessionPool(
    lambda system: httpx.Client(follow_redirects=False, trust_env=False))


@dataclass(frozen=True)
class Answer:
    reply: Reply
    latency_ms: float


def complete(system: System, body: dict[str, Any], *, timeout_s: float) -> Answer:
    """Send ``body``; `Transient` when the server may answer later, `Rejected` (or
    `Garbage`) when it will not. The key never appears in what is raised."""
    settings = system.llm_settings
    key = settings.api_key.resolve(system=system.name) if settings.api_key else None
    mask = Masker([key] if key else [])
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body, separators=(",", ":")).encode()
    limit = settings.max_response_bytes
    timeout = httpx.Timeout(timeout_s, connect=min(settings.connect_timeout, timeout_s))
    started = time.monotonic()
    try:
        with _clients.get(system).stream("POST", f"{system.base_url}/chat/completions",
                                         content=data, headers=headers,
                                         timeout=timeout) as response:
            raw = _read(response, limit)
    except httpx.TimeoutException:
        raise Transient(f"{system.name}: no answer within {timeout_s:.0f}s") from None
    except httpx.TransportError as exc:
        raise Transient(f"{system.name}: {mask.text(type(exc).__name__)}: "
                        f"{mask.text(str(exc))[:200]}") from None
    latency = (time.monotonic() - started) * 1000
    if response.status_code in RETRY_STATUSES:
        raise Transient(f"{system.name} answered {response.status_code}")
    if response.status_code != 200:
        raise Rejected(f"{system.name} answered {response.status_code}: "
                       f"{mask.text(raw[:300].decode('utf-8', 'replace'))}")
    return Answer(reply=parse(raw, sent_chars=len(data)), latency_ms=latency)


def _read(response: httpx.Response, limit: int) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise Garbage(f"the model server's answer is over {limit} bytes "
                          "(`llm.max_response_bytes` of the system); stopped reading")
        chunks.append(chunk)
    return b"".join(chunks)
