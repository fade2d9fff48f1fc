"""Secret references: where a secret lives (an environment variable or a file), never the
secret itself, resolved when used. The systems file, notification and flow files write them
(`docs/secrets.md`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from interlock.errors import InterlockError

MIN_SECRET_BYTES = 16  # an HMAC key shorter than this is refused (signing.MIN_SECRET_BYTES)


class SecretError(InterlockError):
    pass


class SecretRef(BaseModel):
    """Where a secret lives: exactly one of an environment variable or a file."""

    model_config = ConfigDict(extra="forbid")
    env: str | None = None
    file: Path | None = None
    # What its messages call the file it is written in and the thing it belongs to (a
    # subclass for another file changes these, not the rules).
    SOURCE: ClassVar[str] = "the systems file"
    OWNER: ClassVar[str] = "system"

    @model_validator(mode="before")
    @classmethod
    def _not_literal(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError("a secret is a reference, `{env: NAME}` or `{file: PATH}`; never "
                             f"write the secret itself in {cls.SOURCE}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference is `{env: NAME}` or `{file: PATH}`; never "
                             f"write the secret itself in {self.SOURCE}")
        return self

    def resolve(self, *, system: str) -> str:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretError(f"{self.OWNER} {system}: environment variable {self.env} is "
                                  f"not set; it holds a secret {self.SOURCE} refers to")
            return value
        assert self.file is not None
        try:
            return self.file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretError(f"{self.OWNER} {system}: cannot read secret file {self.file}: "
                              f"{exc.strerror}") from None

    def check_strength(self, what: str) -> None:
        """ValueError when the secret resolves now and is shorter than MIN_SECRET_BYTES
        (a file holding only a newline is the empty key). One that does not resolve yet
        (a variable set later) is refused when it is used."""
        try:
            value = self.resolve(system="-")
        except SecretError:
            return
        if len(value.encode()) < MIN_SECRET_BYTES:
            where = f"environment variable {self.env}" if self.env else f"file {self.file}"
            raise ValueError(f"{what} ({where}) is {len(value.encode())} bytes; an HMAC key "
                             f"needs at least {MIN_SECRET_BYTES} random bytes, e.g. "
                             "`openssl rand -hex 32`")
