"""docs/adapters.md's method table is the adapter contract: same methods, same required ones."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from interlock.adapters.contract import Adapter

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters.md"
ROW = re.compile(r"^\| `(?P<name>\w+)\(.*?\)` \| (?P<required>yes|no) \|", re.MULTILINE)


def _documented() -> dict[str, bool]:
    rows = {m["name"]: m["required"] == "yes" for m in ROW.finditer(DOC.read_text())}
    assert rows, f"no method table found in {DOC}"
    return rows


def _contract() -> dict[str, bool]:
    return {name: name in Adapter.__abstractmethods__ for name, value in vars(Adapter).items()
            if not name.startswith("_") and callable(getattr(Adapter, name))
            and not inspect.isclass(value)}


def test_documented_methods_are_the_contract() -> None:
    assert _documented() == _contract()


def test_no_health_check_in_the_contract() -> None:
    """`check()` was never called by anything; it is gone, not silently ignored."""
    assert not hasattr(Adapter, "check")
