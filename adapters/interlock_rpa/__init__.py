"""`uses: rpa`: run Robot Framework robots in the script adapter's supervised subprocess.

Names are imported lazily: a robot that imports ``interlock_rpa.Outputs`` starts in a
fresh interpreter and needs none of pydantic or the core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interlock_rpa.adapter import RpaAdapter
    from interlock_rpa.library import Outputs

__all__ = ["Outputs", "RpaAdapter"]


def __getattr__(name: str) -> object:
    if name == "RpaAdapter":
        from interlock_rpa.adapter import RpaAdapter
        return RpaAdapter
    if name == "Outputs":
        from interlock_rpa.library import Outputs
        return Outputs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
