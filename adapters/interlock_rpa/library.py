"""`Library    interlock_rpa.Outputs`: a robot's keywords to hand outputs to Interlock.

    Set Interlock Output     invoices    ${count}
    Set Interlock Outputs    matched=${matched}    mismatches=${mismatches}

Values are written to the file named by $INTERLOCK_OUTPUT as one JSON object, merged
with what is there, so numbers, lists and dictionaries keep their types. Outside
Interlock (no $INTERLOCK_OUTPUT) the keywords only log what they would have set.

This module runs inside the robot's interpreter: it imports nothing from Interlock.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword, library

ENV_OUTPUT = "INTERLOCK_OUTPUT"
RESERVED = frozenset({"robot", "artifacts"})  # filled in by the adapter after the run
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


@library(scope="GLOBAL", auto_keywords=False)
class Outputs:
    """Keywords that set the outputs of the Interlock node running this robot."""

    @keyword
    def set_interlock_output(self, name: str, value: Any) -> None:
        """Set output ``name`` to ``value``; a later call with the same name wins.

        Pass typed values as variables (``${count}``, ``${{ [1, 2] }}``): a literal
        ``42`` in a robot file is the text "42".
        """
        self.set_interlock_outputs(**{name: value})

    @keyword
    def set_interlock_outputs(self, **values: Any) -> None:
        """Set several outputs at once: ``name=value`` arguments."""
        for name in values:
            _check_name(name)
        encoded = {name: _encoded(name, value) for name, value in values.items()}
        target = os.environ.get(ENV_OUTPUT)
        if not target:
            logger.info(f"${ENV_OUTPUT} is not set (not run by Interlock); "
                        f"outputs not saved: {json.dumps(encoded)}")
            return
        merge_into(Path(target), encoded)
        logger.info(f"Interlock outputs set: {', '.join(values)}")


def merge_into(path: Path, values: dict[str, Any]) -> None:
    """Merge ``values`` into the JSON object in ``path``; readers never see half a file."""
    current = _read(path)
    current.update(values)
    text = json.dumps(current, indent=2, ensure_ascii=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
    except PermissionError:
        # Run as another user (`run_as`), the robot owns the file but not its directory;
        # Interlock reads the file only after the robot has ended.
        path.write_text(text, encoding="utf-8")
        return
    os.replace(tmp, path)


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise RuntimeError(f"${ENV_OUTPUT} ({path}) holds something other than JSON: "
                           "do not mix `Set Interlock Output` with `name=value` lines") from None
    if not isinstance(value, dict):
        raise RuntimeError(f"${ENV_OUTPUT} ({path}) must hold one JSON object")
    return value


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid output name {name!r}: letters, digits, `_`, `.`, `-`, "
                         "not starting with a digit")
    if name in RESERVED:
        raise ValueError(f"output name {name!r} is reserved: Interlock sets `robot` and "
                         "`artifacts` itself")


def _encoded(name: str, value: Any) -> Any:
    """The value as JSON will give it back; refuse what JSON cannot hold."""
    try:
        return json.loads(json.dumps(value, ensure_ascii=False, allow_nan=False))
    except (TypeError, ValueError) as e:
        raise ValueError(f"output {name!r} cannot be stored as JSON ({e}); "
                         "convert it first, e.g. with `Convert To String`") from None
