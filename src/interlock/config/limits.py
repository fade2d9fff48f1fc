"""Bounds on what comes from outside: how deep a JSON (or YAML) value may nest.

One constant for every door: request bodies (`interlock.api.limits`), run inputs
(`spec.inputs`), flow and systems files (`config.yamlpos`) and what the audit trail keeps
(`store.audit`), so a value one door accepts is never refused when it is read back.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 32  # levels of `[`/`{` (lists and mappings); a scalar alone is depth 0


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` levels (iterative: no
    recursion, and stops at the first branch past the limit)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def clipped(value: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """``value`` with whatever nests past ``limit`` replaced by a short note (for records
    that must be written whatever they hold, such as the audit trail)."""
    if not too_deep(value, limit):
        return value
    return _clip(value, limit)


def _clip(value: Any, left: int) -> Any:
    if not isinstance(value, (dict, list, tuple)):
        return value
    if left <= 0:
        return f"<nested deeper than {MAX_JSON_DEPTH} levels: dropped>"
    if isinstance(value, dict):
        return {k: _clip(v, left - 1) for k, v in value.items()}
    return [_clip(v, left - 1) for v in value]
