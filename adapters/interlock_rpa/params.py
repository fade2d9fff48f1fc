"""The `with:` of a `uses: rpa` node."""

from __future__ import annotations

import json
import re
from typing import Any

from interlock_script.params import ProcessParams
from pydantic import Field, ValidationInfo, field_validator

# Robot variable names as a JSON variables file defines them: `${NAME}` in the robot.
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")


class RpaParams(ProcessParams):
    """`env`, `inherit_env` and `cwd` as for `uses: script`."""

    robot: str = Field(
        min_length=1, description="A .robot file or a directory of robots (relative to `cwd`).")
    tasks: list[str] = Field(
        default_factory=list, description="Task names or patterns (`--task` each); all if empty.")
    include: list[str] = Field(default_factory=list, description="Tags to include (`--include`).")
    exclude: list[str] = Field(default_factory=list, description="Tags to exclude (`--exclude`).")
    variables: dict[str, Any] = Field(
        default_factory=dict, description="`${NAME}` values for the robot, types kept.")
    variable_files: list[str] = Field(
        default_factory=list, description="Robot variable files (relative to `cwd`).")
    rpa: bool = Field(default=True, description="Run in RPA mode (`--rpa`), else `--norpa`.")

    @field_validator("tasks", "include", "exclude")  # paths: `interlock.adapters.paths`
    @classmethod
    def _no_nul(cls, value: str | list[str], info: ValidationInfo) -> str | list[str]:
        """A NUL byte cannot be a command-line argument: refused here, by name."""
        for word in [value] if isinstance(value, str) else value:
            if "\0" in word:
                raise ValueError(f"`{info.field_name}` contains a NUL byte, which no command "
                                 "line can carry")
        return value

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            if not _VARIABLE_NAME.fullmatch(name):
                raise ValueError(f"invalid robot variable name {name!r}: write `NAME`, not "
                                 "`${NAME}` (letters, digits, `_` and spaces)")
            try:
                json.dumps(item)
            except (TypeError, ValueError) as e:
                raise ValueError(f"variable {name!r} cannot be passed to a robot: {e}") from None
        return value
