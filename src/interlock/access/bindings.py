"""Role bindings for identities from the OIDC provider: a file maps groups (and subjects)
to roles on namespace patterns (`INTERLOCK_OIDC_BINDINGS`).

    groups:
      platform-admins: [{role: admin, namespace: "*"}]
      finance-ops:     [{role: operator, namespace: "finance.*"}]
    subjects:
      ci-bot:          [{role: launcher, namespace: "ci.*"}]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from interlock.access.permissions import Role
from interlock.access.principals import Binding
from interlock.config import files
from interlock.errors import InterlockError
from interlock.spec.namespaces import check_pattern


class BindingsError(InterlockError):
    pass


class _Grant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    namespace: str = Field(max_length=200)

    @field_validator("namespace")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return check_pattern(value)


class BindingsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: dict[str, list[_Grant]] = Field(default_factory=dict)
    subjects: dict[str, list[_Grant]] = Field(default_factory=dict)

    def for_identity(self, subject: str, groups: Sequence[str]) -> tuple[Binding, ...]:
        grants = [*self.subjects.get(subject, ())]
        for group in groups:
            grants += self.groups.get(group, ())
        return tuple(dict.fromkeys(Binding(g.role, g.namespace) for g in grants))


def _parse(path: Path) -> BindingsFile:
    try:
        return BindingsFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise BindingsError(f"{path}: {exc}") from exc


def load_bindings(path: Path | None) -> BindingsFile:
    """The bindings file, re-read when it changes; no file binds nobody to anything."""
    return files.cached_file(path, _parse) if path is not None else BindingsFile()
