"""Budgets, checked on what the store counted (`AgentHost.usage`): a pause, a crash or a
retry never resets them. Exceeding one ends the node naming it."""

from __future__ import annotations

from interlock.adapters.agents import Usage
from interlock_agent.params import Budget


def before_model(budget: Budget, used: Usage) -> str | None:
    """Why no further model request may be sent, if one is why."""
    checks = [("model_requests", used.model_requests, budget.model_requests),
              ("input_tokens", used.input_tokens, budget.input_tokens),
              ("output_tokens", used.output_tokens, budget.output_tokens),
              ("cost", used.cost, budget.cost)]
    for name, spent, limit in checks:
        if limit is not None and spent >= limit:
            return exhausted(name, spent, limit)
    return wall(budget, used)


def after_model(budget: Budget, used: Usage) -> str | None:
    """A request that went over a token or cost budget ends the node, answer or not."""
    for name, spent, limit in [("input_tokens", used.input_tokens, budget.input_tokens),
                               ("output_tokens", used.output_tokens, budget.output_tokens),
                               ("cost", used.cost, budget.cost)]:
        if limit is not None and spent > limit:
            return exhausted(name, spent, limit)
    return None


def before_tool(budget: Budget, used: Usage) -> str | None:
    if used.tool_calls >= budget.tool_calls:
        return exhausted("tool_calls", used.tool_calls, budget.tool_calls)
    return wall(budget, used)


def wall(budget: Budget, used: Usage) -> str | None:
    if used.wall_s >= budget.wall_time:
        return (f"budget wall_time exhausted: {used.wall_s:.1f}s of {budget.wall_time:g}s "
                "since the node's first attempt began")
    return None


def max_tokens(budget: Budget, used: Usage) -> int | None:
    """What the next answer may spend of the output budget."""
    if budget.output_tokens is None:
        return None
    return max(1, budget.output_tokens - used.output_tokens)


def exhausted(name: str, spent: float, limit: float) -> str:
    return f"budget {name} exhausted: {spent:g} used of {limit:g}"
