"""Status mappings: how a foreign system's own words map to Interlock's node states.

Mappings are data (`<system>.yaml`), not code, so an operator can read and adjust them. Each
adapter ships its default status mapping as package data (`interlock_<kind>/mappings/`); a
file of the same name in the user's mappings folder (INTERLOCK_MAPPINGS, default ./mappings)
overrides it (:func:`mapping_file`). A mapping must cover every status the adapter declares
it can see: a gap is an error when the mapping loads, never a surprise at run time.

    # mappings/example.yaml
    system: example
    statuses:
      queued: queued
      running: running
      success: succeeded
      failed: failed
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from interlock.config import env, files
from interlock.errors import InterlockError
from interlock.states import NodeState


class MappingError(InterlockError):
    pass


@dataclass(frozen=True)
class StatusMapping:
    system: str
    statuses: dict[str, NodeState]

    def state_of(self, status: str) -> NodeState:
        try:
            return self.statuses[status]
        except KeyError:
            raise MappingError(f"{self.system}: status {status!r} has no mapping; add it to "
                               f"{self.system}.yaml in the mappings folder "
                               "(INTERLOCK_MAPPINGS)") from None

    @classmethod
    def parse(cls, text: str, *, source: str, required: Iterable[str] = (),
              section: str = "statuses") -> StatusMapping:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingError(f"{source}: invalid YAML: {exc}") from exc
        return cls.of(doc, source=source, required=required, section=section)

    @classmethod
    def of(cls, doc: Any, *, source: str, required: Iterable[str] = (),
           section: str = "statuses") -> StatusMapping:
        """The mapping in a parsed YAML document; MappingError naming every problem."""
        if not isinstance(doc, dict) or not isinstance(doc.get(section), dict):
            raise MappingError(f"{source}: expected `system:` and a `{section}:` mapping")
        system = str(doc.get("system") or Path(source).stem)
        statuses, problems = {}, []
        for status, state in doc[section].items():
            try:
                statuses[str(status)] = NodeState(state)
            except ValueError:
                known = ", ".join(s.value for s in NodeState)
                problems.append(f"status {status!r} maps to {state!r}, which is not a state "
                                f"({known})")
        missing = sorted(set(required) - set(statuses))
        if missing:
            problems.append(f"`{section}`: no mapping for status(es) "
                            f"{', '.join(map(repr, missing))}")
        if problems:
            raise MappingError(f"{source}: " + "; ".join(problems))
        return cls(system=system, statuses=statuses)

    @classmethod
    def load(cls, path: str | Path, *, required: Iterable[str] = (),
             section: str = "statuses") -> StatusMapping:
        """The mapping in ``path``, read through the file cache (again when it changes)."""
        path = Path(path)
        try:
            doc = files.load_yaml(path)
        except OSError as exc:
            raise MappingError(f"cannot read mapping {path}: {exc.strerror}; set "
                               "INTERLOCK_MAPPINGS to the folder that holds it") from None
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: invalid YAML: {exc}") from exc
        return cls.of(doc, source=str(path), required=required, section=section)


def mappings_dir() -> Path:
    """The user's mappings folder: INTERLOCK_MAPPINGS, else ./mappings. Overrides of the
    shipped defaults and the mappings Interlock writes (`interlock import`) live here."""
    return env.current().mappings_dir or Path.cwd() / "mappings"


def mapping_file(name: str, package: str) -> Path:
    """``name`` in the user's mappings folder if it is there, else the default ``package``
    ships as package data (``<package>/mappings/<name>``)."""
    override = mappings_dir() / name
    if override.is_file():
        return override
    shipped = resources.files(package) / "mappings" / name
    if not isinstance(shipped, Path):  # a zipped install: the file cache needs a real file
        raise MappingError(f"{package} is not installed as files; put {name} in "
                           f"{mappings_dir()} (INTERLOCK_MAPPINGS)")
    return shipped
