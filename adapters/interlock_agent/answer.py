"""The final answer: JSON fitting `output_schema` when the node has one (else the node
fails with the validation error), or the text itself."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from interlock.adapters.agents import Usage
from interlock_agent.outcome import Outcome
from interlock_agent.params import AgentParams

MAX_ANSWER_CHARS = 65_536


def final_outputs(content: Any, params: AgentParams, used: Usage) -> Outcome:
    text = content if isinstance(content, str) else ""
    usage = {"model_requests": used.model_requests, "tool_calls": used.tool_calls,
             "input_tokens": used.input_tokens, "output_tokens": used.output_tokens,
             "cost": round(used.cost, 6)}
    if len(text) > MAX_ANSWER_CHARS:
        return Outcome("failed", error=f"the final answer is {len(text)} characters; at "
                                       f"most {MAX_ANSWER_CHARS}")
    if params.output_schema is None:
        return Outcome("succeeded", outputs={"answer": text, "usage": usage})
    try:
        value = json.loads(_unfenced(text))
    except ValueError:
        return Outcome("failed", error=f"the final answer is not JSON: {text[:200]!r}")
    errors = sorted(Draft202012Validator(params.output_schema).iter_errors(value),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(map(str, errors[0].absolute_path)) or "(top)"
        return Outcome("failed", error=f"the final answer does not fit `output_schema`: "
                                       f"{where}: {errors[0].message[:300]}")
    return Outcome("succeeded", outputs={"answer": value, "usage": usage})


def _unfenced(text: str) -> str:
    """A model's ```json ... ``` fence around the answer is not part of it."""
    body = text.strip()
    if body.startswith("```") and body.endswith("```"):
        body = body[3:-3]
        body = body[4:] if body.startswith("json") else body
    return body.strip()
