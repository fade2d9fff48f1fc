"""`uses: script`: run a command or an inline script on the worker's host.

``ScriptAdapter`` is imported lazily: the runner (``python -m interlock_script.runner``)
starts once per attempt and needs none of pydantic or the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlock_script.adapter import ScriptAdapter

__all__ = ["ScriptAdapter"]


def __getattr__(name: str) -> object:
    if name == "ScriptAdapter":
        from interlock_script.adapter import ScriptAdapter
        return ScriptAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
