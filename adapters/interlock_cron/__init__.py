"""`uses: cron`: legacy cron jobs, observed through `interlock cron exec` and run on demand.

``CronAdapter`` is imported lazily: `interlock cron exec` runs from crontabs and should
start fast, without the store or the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlock_cron.adapter import CronAdapter

__all__ = ["CronAdapter"]


def __getattr__(name: str) -> object:
    if name == "CronAdapter":
        from interlock_cron.adapter import CronAdapter
        return CronAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
