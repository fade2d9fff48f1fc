"""Run inputs: typed, checked against the flow's `inputs:`, defaults applied."""

from __future__ import annotations

import json
from typing import Any

from interlock.config.limits import MAX_JSON_DEPTH, too_deep
from interlock.errors import InterlockError
from interlock.spec.models import InputSpec, InputType


class InputError(InterlockError):
    """Inputs that do not match the flow; ``problems`` maps each input name to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"input `{k}`: {v}" for k, v in problems.items()))


_PY_TYPES: dict[InputType, tuple[type, ...]] = {
    InputType.STRING: (str,),
    InputType.INTEGER: (int,),
    InputType.NUMBER: (int, float),
    InputType.BOOLEAN: (bool,),
    InputType.OBJECT: (dict,),
    InputType.ARRAY: (list,),
}


def type_problem(spec: InputSpec, value: Any) -> str | None:
    """What is wrong with ``value`` for ``spec``, or None."""
    expected = _PY_TYPES[spec.type]
    is_bool = isinstance(value, bool)
    if is_bool and spec.type is not InputType.BOOLEAN:
        return f"expected {spec.type.value}, got a boolean"
    if not isinstance(value, expected):
        return f"expected {spec.type.value}, got {type(value).__name__} {value!r}"
    return None


def parse_cli_value(spec: InputSpec, text: str) -> Any:
    """`--input k=v` gives strings; read them as the declared type."""
    if spec.type is InputType.STRING:
        return text
    if spec.type is InputType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in {"true", "yes", "1"}:
            return True
        if lowered in {"false", "no", "0"}:
            return False
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # reported as the wrong type by check_inputs


def check_inputs(specs: dict[str, InputSpec], given: dict[str, Any], *,
                 from_strings: bool = False) -> dict[str, Any]:
    """The run's inputs: given values checked, defaults filled in. Raises InputError."""
    problems: dict[str, str] = {}
    result: dict[str, Any] = {}
    for name in given.keys() - specs.keys():
        declared = ", ".join(sorted(specs)) or "none"
        problems[name] = f"the flow declares no such input (declared: {declared})"
    for name, spec in specs.items():
        if name not in given:
            if spec.required:
                problems[name] = f"required {spec.type.value} input is missing"
            elif spec.default is not None:
                result[name] = spec.default
            continue
        value = given[name]
        if from_strings and isinstance(value, str):
            value = parse_cli_value(spec, value)
        if (problem := type_problem(spec, value)) is not None:
            problems[name] = problem
        elif too_deep(value):
            problems[name] = f"nested deeper than {MAX_JSON_DEPTH} levels"
        else:
            result[name] = value
    if problems:
        raise InputError(dict(sorted(problems.items())))
    return result
