"""Bounds on what comes from outside: how deep a JSON (or YAML) value may nest.

One constant for every door: request bodies (`interlock.api.limits`), run inputs
(`spec.inputs`), flow and systems files (`config.yamlpos`) and what the audit trail keeps
(`store.facts`), so a value one door accepts is never refused when it is read back.
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
