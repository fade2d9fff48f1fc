"""Secrets backends: `env` (the worker's environment) and `file` (one file per secret, as
Docker and Kubernetes mount them), plus any found in the `interlock.secrets` entry points.

A backend is a class with `from_settings(settings)` and `get(name) -> str`; it raises
:class:`SecretNotFound` with a message that says where it looked, never a value.
"""

from __future__ import annotations

import os
import re
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import ClassVar, Protocol

from interlock.config.env import Settings, settings
from interlock.errors import Rejected

ENTRY_POINT_GROUP = "interlock.secrets"
MAX_SECRET_BYTES = 64 * 1024
# Interlock's own configuration is not a secret store for flows: a flow that could name
# INTERLOCK_DATABASE_URL would read the store's password.
RESERVED_PREFIX = "INTERLOCK_"
# A file name: no separators, no leading dot (so no `..`, no hidden files).
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


class SecretNotFound(Rejected):
    """The secret does not resolve: the attempt fails, nothing is submitted."""


class SecretsBackend(Protocol):
    name: ClassVar[str]

    @classmethod
    def from_settings(cls, config: Settings) -> SecretsBackend: ...

    def get(self, name: str) -> str: ...


class EnvBackend:
    """`secret('NAME')` is the worker's environment variable NAME."""

    name: ClassVar[str] = "env"

    def __init__(self, environ: dict[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    @classmethod
    def from_settings(cls, config: Settings) -> EnvBackend:
        return cls()

    def get(self, name: str) -> str:
        if name.startswith(RESERVED_PREFIX):
            raise SecretNotFound(f"secret {name!r}: names starting with {RESERVED_PREFIX} are "
                                 "Interlock's own settings, not secrets a flow may read")
        value = self.environ.get(name)
        if value is None:
            raise SecretNotFound(f"secret {name!r} not found: set the environment variable "
                                 f"{name} on the workers (secrets backend `env`)")
        return value


class FileBackend:
    """`secret('NAME')` is the file NAME in the secrets folder, one trailing newline off."""

    name: ClassVar[str] = "file"

    def __init__(self, folder: Path):
        self.folder = folder

    @classmethod
    def from_settings(cls, config: Settings) -> FileBackend:
        return cls(config.secrets_dir or config.home / "secrets")

    def get(self, name: str) -> str:
        if not _FILE_NAME.fullmatch(name):
            raise SecretNotFound(f"secret {name!r}: the `file` backend takes file names "
                                 "(letters, digits, `_`, `-`, `.`; no `/`, no leading `.`)")
        root = self.folder.resolve()
        path = (root / name).resolve()
        if path.parent != root:  # a symlink leading out of the folder
            raise SecretNotFound(f"secret {name!r}: {root / name} leads outside {root}")
        try:
            with path.open("rb") as f:
                data = f.read(MAX_SECRET_BYTES + 1)
        except OSError as e:
            raise SecretNotFound(f"secret {name!r} not found in {root} (secrets backend "
                                 f"`file`): {e.strerror or e}") from None
        if len(data) > MAX_SECRET_BYTES:
            raise SecretNotFound(f"secret {name!r}: {path} is over {MAX_SECRET_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretNotFound(f"secret {name!r}: {path} is not UTF-8 text") from None
        return text[:-1] if text.endswith("\n") else text


BUILT_IN: dict[str, type[SecretsBackend]] = {"env": EnvBackend, "file": FileBackend}


def backend(config: Settings | None = None) -> SecretsBackend:
    """The configured backend (INTERLOCK_SECRETS_BACKEND)."""
    config = config or settings()
    return _backend_class(config.secrets_backend).from_settings(config)


@cache
def _backend_class(name: str) -> type[SecretsBackend]:
    if name in BUILT_IN:
        return BUILT_IN[name]
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        known = ", ".join(sorted({*BUILT_IN, *found}))
        raise Rejected(f"secrets backend {name!r} is not installed (INTERLOCK_SECRETS_BACKEND; "
                       f"known: {known}; others register in the `{ENTRY_POINT_GROUP}` "
                       "entry-point group)")
    cls: type[SecretsBackend] = found[name].load()
    return cls
