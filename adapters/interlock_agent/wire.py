"""The OpenAI chat-completions wire format: the request we send, and the strict reading of
what comes back. Everything in an answer is hostile: its shape is checked, its sizes are
bounded, and anything else is `Garbage` (the node fails saying what was wrong)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from interlock.adapters import Rejected

MAX_TOOL_CALLS = 16          # per answer
MAX_ARGUMENTS_CHARS = 65_536  # a tool call's arguments as the model wrote them
MAX_CONTENT_CHARS = 262_144
MAX_ID_CHARS = 128


class Garbage(Rejected):
    """The server answered, but not with a chat completion we can read."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str            # JSON text, parsed and checked by the governance, not here


@dataclass(frozen=True)
class Reply:
    content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str
    input_tokens: int
    output_tokens: int
    counted: bool             # the server said the token counts (else we estimated them)

    def message(self) -> dict[str, Any]:
        """The assistant message as it goes back into the conversation."""
        out: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in self.tool_calls]
        return out


def request(*, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]],
            max_tokens: int | None, output_schema: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if tools:
        body["tools"] = tools
    elif output_schema is not None:  # servers that constrain output then answer JSON only
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "answer", "schema": output_schema}}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def tool_entry(name: str, description: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function",
            "function": {"name": name, "description": description, "parameters": parameters}}


def parse(raw: bytes, *, sent_chars: int) -> Reply:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Garbage(f"the model server's answer is not JSON ({len(raw)} bytes, starting "
                      f"{raw[:60]!r})") from None
    choice = _first_choice(doc)
    message = _obj(choice.get("message"), "choices[0].message")
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise Garbage("choices[0].message.content is not a string")
    if content is not None and len(content) > MAX_CONTENT_CHARS:
        raise Garbage(f"the model's message is {len(content)} characters; at most "
                      f"{MAX_CONTENT_CHARS}")
    calls = _tool_calls(message.get("tool_calls"))
    finish = choice.get("finish_reason")
    finish = finish[:40] if isinstance(finish, str) else "unknown"
    usage = doc.get("usage")
    tokens = _usage(usage) if isinstance(usage, dict) else None
    if tokens is None:  # no count given: estimate (4 characters a token) rather than free
        tokens = (sent_chars // 4 + 1, len(content or "") // 4 + 1)
    return Reply(content=content, tool_calls=calls, finish_reason=finish,
                 input_tokens=tokens[0], output_tokens=tokens[1], counted=usage is not None)


def _first_choice(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise Garbage("the model server's answer is not a JSON object")
    if "error" in doc and "choices" not in doc:
        error = doc["error"]
        text = error.get("message") if isinstance(error, dict) else error
        raise Garbage(f"the model server answered an error: {str(text)[:300]}")
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Garbage("the model server's answer has no `choices`")
    return _obj(choices[0], "choices[0]")


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Garbage(f"{where} is not an object")
    return value


def _tool_calls(value: Any) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TOOL_CALLS:
        raise Garbage(f"tool_calls is not a list of at most {MAX_TOOL_CALLS}")
    calls: list[ToolCall] = []
    seen: set[str] = set()
    for n, raw in enumerate(value):
        call = _obj(raw, f"tool_calls[{n}]")
        function = _obj(call.get("function"), f"tool_calls[{n}].function")
        name, arguments = function.get("name"), function.get("arguments", "{}")
        if isinstance(arguments, dict):  # some servers send an object: same meaning
            arguments = json.dumps(arguments)
        if not isinstance(name, str) or not isinstance(arguments, str):
            raise Garbage(f"tool_calls[{n}] has no function name or arguments")
        call_id = call.get("id") if isinstance(call.get("id"), str) else ""
        call_id = call_id[:MAX_ID_CHARS - 8] or f"call_{n}"
        if call_id in seen:  # each call answered on its own, even if the model reused an id
            call_id = f"{call_id}_{n}"
        seen.add(call_id)
        calls.append(ToolCall(id=call_id, name=name[:200],
                              arguments=arguments[:MAX_ARGUMENTS_CHARS + 1]))
    return tuple(calls)


def _usage(usage: dict[str, Any]) -> tuple[int, int] | None:
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10**9
               for v in (prompt, completion)):
        return None
    return prompt, completion  # type: ignore[return-value]
