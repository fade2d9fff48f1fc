"""The `with:` of a `uses: rpa` node."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Robot variable names as a JSON variables file defines them: `${NAME}` in the robot.
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*")
_ENV_NAME = re.compile(r"[^=\0]+")


class RpaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: list[str] = Field(
        default_factory=list, description="Names copied from the worker's environment.")
    cwd: str | None = None
    rpa: bool = Field(default=True, description="Run in RPA mode (`--rpa`), else `--norpa`.")

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

    @field_validator("env", mode="before")
    @classmethod
    def _env_as_text(cls, value: object) -> object:
        """Rendered expressions keep their types (`{{ inputs.n }}` is an int); env is text."""
        if not isinstance(value, dict):
            return value
        return {name: _as_text(v) for name, v in value.items()}

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            _check_env_name(name)
            if "\0" in text:
                raise ValueError(f"env value of {name!r} contains a NUL byte")
        return value

    @field_validator("inherit_env")
    @classmethod
    def _inherit_names(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_env_name(name)
        return value


def _as_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _check_env_name(name: str) -> None:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"invalid environment variable name {name!r}")
