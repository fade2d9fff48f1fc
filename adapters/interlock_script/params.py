"""The `with:` of a `uses: script` node."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_INTERPRETER = "/bin/sh"
DEFAULT_LOG_MAX_BYTES = 1_000_000


class ProcessParams(BaseModel):
    """What every adapter that starts a local process takes: environment and directory."""

    model_config = ConfigDict(extra="forbid")

    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: list[str] = Field(
        default_factory=list, description="Names copied from the worker's environment.")
    cwd: str | None = None
    system: str | None = Field(
        default=None, description="A `script/<name>` system of the systems file; its `run_as` "
        "is the OS user the command runs as (docs/deploy.md).")

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


class ScriptParams(ProcessParams):
    """A shell command, an argv list or an inline script."""

    command: str | list[str] | None = Field(
        default=None, description="A shell command (run by /bin/sh -c) or an argv list (no shell).")
    script: str | None = Field(
        default=None, description="An inline script body, run by `interpreter`.")
    interpreter: str = Field(
        default=DEFAULT_INTERPRETER, description="Runs `script`; may carry arguments (`bash -eu`).")
    log_max_bytes: int = Field(default=DEFAULT_LOG_MAX_BYTES, ge=0)

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value is not None and not (value.strip() if isinstance(value, str) else value):
            raise ValueError("`command` is empty")
        words = [value] if isinstance(value, str) else value or []
        for i, word in enumerate(words):
            if "\0" in word:
                where = "`command`" if isinstance(value, str) else f"`command[{i}]`"
                raise ValueError(f"{where} contains a NUL byte, which no command line can "
                                 "carry: a value with one cannot be passed as an argument")
        return value

    @field_validator("interpreter")
    @classmethod
    def _interpreter_text(cls, value: str) -> str:
        if "\0" in value:
            raise ValueError("`interpreter` contains a NUL byte")
        return value

    @model_validator(mode="after")
    def _one_of_command_or_script(self) -> ScriptParams:
        if (self.command is None) == (self.script is None):
            raise ValueError("give exactly one of `command` or `script`")
        if self.command is not None and "interpreter" in self.model_fields_set:
            raise ValueError("`interpreter` only applies to `script`, not to `command`")
        return self


def _as_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return value


def _check_env_name(name: str) -> None:
    if not name or "=" in name or "\0" in name:
        raise ValueError(f"invalid environment variable name {name!r}")
