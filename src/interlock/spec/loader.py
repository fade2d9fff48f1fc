"""Loading flows: YAML -> positions -> pydantic -> graph checks, every problem at once."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from interlock.adapters.contract import Adapter
from interlock.adapters.registry import AdapterRegistry, UnknownAdapter, default_registry
from interlock.config.yamlpos import Located, load_located
from interlock.errors import Problem, SpecError
from interlock.spec import trigger_inputs
from interlock.spec.checks import AdapterLookup, check_graph
from interlock.spec.inputs import type_problem
from interlock.spec.models import Flow, InputSpec


def adapter_lookup(registry: AdapterRegistry) -> AdapterLookup:
    def lookup(kind: str) -> type[Adapter] | str:
        try:
            return registry.adapter_class(kind)
        except UnknownAdapter as exc:
            return str(exc)
    return lookup


def parse_flow(text: str, file: str = "<flow>", registry: AdapterRegistry | None = None) -> Flow:
    """The flow in ``text``; raises SpecError listing every problem, sorted by position."""
    flow, problems = _parse(text, file, registry or default_registry())
    if problems:
        raise SpecError(sorted(set(problems), key=lambda p: (p.line, p.col, p.message)))
    assert flow is not None
    return flow


def load_flow(path: str | Path, registry: AdapterRegistry | None = None) -> Flow:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), 1, 1, f"cannot read the file: {exc}")]) from exc
    return parse_flow(text, str(path), registry)


def validate_paths(paths: Iterable[str | Path],
                   registry: AdapterRegistry | None = None) -> list[Problem]:
    """Every problem in every file (directories are searched for *.yaml / *.yml)."""
    problems: list[Problem] = []
    for path in expand(paths):
        try:
            load_flow(path, registry)
        except SpecError as exc:
            problems.extend(exc.problems)
    return problems


def expand(paths: Iterable[str | Path]) -> list[Path]:
    result: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            result += sorted(x for x in p.rglob("*") if x.suffix in {".yaml", ".yml"})
        else:
            result.append(p)
    return result


def _parse(text: str, file: str, registry: AdapterRegistry) -> tuple[Flow | None, list[Problem]]:
    doc = load_located(text, file)
    problems = list(doc.problems)
    if doc.value is None and problems:
        return None, problems
    if not isinstance(doc.value, dict):
        return None, [*problems, doc.at((), "a flow is a mapping with `id` and `nodes`")]
    flow: Flow | None = None
    try:
        flow = Flow.model_validate(doc.value)
    except ValidationError as exc:
        problems += [_located_error(doc, err) for err in exc.errors()]
    problems += check_graph(doc, adapter_lookup(registry))
    problems += trigger_inputs.check(doc)
    problems += _check_defaults(doc)
    if flow is None and not problems:  # cannot happen; never return "valid" without a flow
        problems.append(doc.at((), "the flow could not be read"))
    return (flow if not problems else None), problems


PATTERN_RULES = {
    ("id",): "use letters, digits, `_` or `-`, starting with a letter (at most 128)",
    ("namespace",): "use dot-separated names of letters, digits, `_` or `-`, each starting "
                    "with a letter, e.g. finance.reporting",
}


def _located_error(doc: Located, err: ErrorDetails) -> Problem:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc)
    if err["type"] == "extra_forbidden":
        return doc.at(loc, f"unknown key `{loc[-1]}` in `{'.'.join(map(str, loc[:-1])) or 'flow'}`")
    if err["type"] == "missing":
        return doc.at(loc[:-1], f"`{where}` is required")
    if err["type"] == "string_pattern_mismatch" and loc in PATTERN_RULES:
        return doc.at(loc, f"`{loc[0]}` {err['input']!r} is not valid: {PATTERN_RULES[loc]}")
    message = err["msg"].removeprefix("Value error, ")
    return doc.at(loc, f"`{where}`: {message}")


def _check_defaults(doc: Located) -> list[Problem]:
    """Defaults of the wrong type, checked on the raw document so they report with the rest."""
    inputs = doc.value.get("inputs")
    problems = []
    for name, raw in (inputs.items() if isinstance(inputs, dict) else ()):
        try:
            spec = InputSpec.model_validate(raw)
        except ValidationError:
            continue  # already reported by the schema
        if spec.default is not None and (problem := type_problem(spec, spec.default)):
            problems.append(doc.at(("inputs", name, "default"),
                                   f"input `{name}` default: {problem}"))
    return problems
