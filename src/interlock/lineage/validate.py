"""OpenLineage events checked against the vendored core spec (2-0-2), offline.

Every problem names the JSON path of the bad field, `run.runId: 'abc' is not a 'uuid'`,
so a producer's author can find it. Beyond the core spec, the fields Interlock reads are
checked too: names fit the store and are not empty, and a `parent` run facet has the
shape of upstream's ParentRunFacet (the core spec leaves facets free-form).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match, relevance

from interlock.errors import InterlockError
from interlock.store.tables.lineage import NAME_MAX, NAMESPACE_MAX

SPEC = Path(__file__).parent / "spec" / "OpenLineage.json"
MAX_PROBLEMS = 20
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?"
                      r"([Zz]|[+-]\d{2}:\d{2})$")


class EventKind(StrEnum):
    RUN = "run"          # RunEvent: a run of a job changed state
    DATASET = "dataset"  # DatasetEvent: static metadata about a dataset
    JOB = "job"          # JobEvent: static metadata about a job and its datasets


@dataclass(frozen=True)
class Problem:
    path: str     # `run.runId`, `inputs[0].name`; `(event)` for the whole body
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidEvent(InterlockError):
    """The event breaks the OpenLineage spec; `problems` names each bad field."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__(str(problems[0]))


def check(event: Any) -> EventKind:
    """The event's kind if it is valid; else InvalidEvent with every problem found."""
    kind = kind_of(event)
    problems = _schema_problems(kind, event) or list(_field_problems(kind, event))
    if problems:
        raise InvalidEvent(problems[:MAX_PROBLEMS])
    return kind


def kind_of(event: Any) -> EventKind:
    """Which of the spec's three events this claims to be (a RunEvent if unclear)."""
    if isinstance(event, dict) and "run" not in event:
        if "dataset" in event:
            return EventKind.DATASET
        if "job" in event:
            return EventKind.JOB
    return EventKind.RUN


def event_time(text: str) -> datetime:
    """An RFC 3339 date-time, aware; any number of fractional digits (Java sends nine)."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with a time zone")
    day, clock, fraction, zone = match.groups()
    fraction = ((fraction or "") + "000000")[:6]
    zone = "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(f"{day}T{clock}.{fraction}{zone}")


def _schema_problems(kind: EventKind, event: Any) -> list[Problem]:
    errors = list(_validators()[kind].iter_errors(event))
    if not errors:
        return []
    first = best_match(errors)
    ordered = [first, *sorted((e for e in errors if e is not first), key=relevance)]
    return list(dict.fromkeys(_problem(e) for e in ordered))  # unique, in order


def _field_problems(kind: EventKind, event: dict[str, Any]) -> Iterator[Problem]:
    if kind is EventKind.DATASET:
        yield from _names("dataset", event["dataset"])
        return
    yield from _names("job", event["job"])
    for side in ("inputs", "outputs"):
        for i, dataset in enumerate(event.get(side, [])):
            yield from _names(f"{side}[{i}]", dataset)
    parent = (event.get("run", {}).get("facets") or {}).get("parent")
    if kind is EventKind.RUN and parent is not None:
        for error in _parent_validator().iter_errors(parent):
            yield _problem(error, prefix="run.facets.parent")


def _names(path: str, node: dict[str, Any]) -> Iterator[Problem]:
    for key, limit in (("namespace", NAMESPACE_MAX), ("name", NAME_MAX)):
        if not node[key]:
            yield Problem(f"{path}.{key}", "must not be empty")
        elif len(node[key]) > limit:
            yield Problem(f"{path}.{key}", f"is {len(node[key])} characters long; "
                                           f"Interlock keeps at most {limit}")


def _problem(error: ValidationError, prefix: str = "") -> Problem:
    error = _deepest(error)
    parts = list(error.absolute_path)
    message = error.message
    if error.validator == "required":
        # One error per missing property, named only in its message: "'runId' is a ..."
        missing = [p for p in error.validator_value if message.startswith(f"{p!r} ")]
        if missing:
            parts.append(missing[0])
            message = "is required"
    return Problem(_path(parts, prefix) or "(event)", message)


def _deepest(error: ValidationError) -> ValidationError:
    """The most specific cause of an `anyOf` failure (best_match stops at a tie)."""
    while error.context:
        error = min(error.context, key=relevance)
    return error


def _path(parts: Iterable[str | int], prefix: str = "") -> str:
    text = prefix
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@cache
def _validators() -> dict[EventKind, Draft202012Validator]:
    defs = spec()["$defs"]
    names = {EventKind.RUN: "RunEvent", EventKind.DATASET: "DatasetEvent",
             EventKind.JOB: "JobEvent"}
    return {kind: Draft202012Validator({"$defs": defs, "$ref": f"#/$defs/{name}"},
                                       format_checker=FORMATS)
            for kind, name in names.items()}


# The `parent` run facet as upstream's ParentRunFacet.json (1-1-0) defines it.
_RUN_REF = {"type": "object", "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}}}
_JOB_REF = {"type": "object", "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string", "minLength": 1,
                                         "maxLength": NAMESPACE_MAX},
                           "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX}}}
PARENT_FACET = {"type": "object", "required": ["run", "job"], "properties": {
    "run": _RUN_REF, "job": _JOB_REF,
    "root": {"type": "object", "required": ["run", "job"],
             "properties": {"run": _RUN_REF, "job": _JOB_REF}}}}


@cache
def _parent_validator() -> Draft202012Validator:
    return Draft202012Validator(PARENT_FACET, format_checker=FORMATS)


# Format checks that need no optional package: jsonschema's own `date-time` check is
# silently skipped without rfc3339-validator, and a bad eventTime must never get through.
FORMATS = FormatChecker(formats=())


@FORMATS.checks("uuid", raises=ValueError)
def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    return len(value) == 36 and all(value[i] == "-" for i in (8, 13, 18, 23))


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    if isinstance(value, str):
        event_time(value)
    return True
