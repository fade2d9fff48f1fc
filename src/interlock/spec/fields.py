"""Field types the flow document and its approval gates share: durations, timezones, strict
models, typed inputs (`interlock.spec.models` re-exports them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from interlock.config.durations import parse_duration

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": r"^(\d+(\.\d+)?(ms|s|m|h|d))+$",
                    "description": "e.g. 500ms, 30s, 5m, 1h30m, 2d"}),
]


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        shown = repr(name) if len(name) <= 40 else repr(name[:37]) + "..."
        raise ValueError(
            f"unknown timezone {shown}: use an IANA name such as Europe/Paris") from None
    return name


TimeZone = Annotated[str, AfterValidator(_check_timezone)]  # `schedule:`, `sla:`


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class InputType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"


class InputSpec(Strict):
    type: InputType = InputType.STRING
    required: bool = False
    default: Any = None
    description: str = ""
