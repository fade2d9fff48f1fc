"""Graph-level checks of a flow, run on the raw document so they report alongside
schema errors: needs, cycles, node ids, adapters, expressions and `with:` params."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import ValidationError

from interlock.adapters.contract import Adapter, RetryMode
from interlock.config.yamlpos import Located
from interlock.errors import ExpressionError, Problem
from interlock.spec.approvals import DECISION_KIND
from interlock.spec.commands import code_item, program_name
from interlock.spec.expressions import (
    INLINE_SCRIPT_KEY,
    INTERPRETER_KEY,
    SECRET_FUNCTION,
    SHELL_COMMAND_KEY,
    condition_template,
    has_expression,
    references,
    secret_name,
    strings_in,
)
from interlock.spec.graph import ancestor_sets, find_cycle
from interlock.spec.models import SLUG

# `uses:` kind -> its adapter class, or a message saying why there is none.
AdapterLookup = Callable[[str], type[Adapter] | str]


def check_graph(doc: Located, adapters: AdapterLookup) -> list[Problem]:
    raw = doc.value if isinstance(doc.value, dict) else {}
    nodes = raw.get("nodes")
    if not isinstance(nodes, dict):
        return []
    needs = {nid: _needs_of(n) for nid, n in nodes.items()}
    problems = list(_check_ids_and_needs(doc, nodes, needs))
    # A node needing itself is reported on its own above, not also as a cycle.
    cycle = find_cycle({k: [u for u in v if u in needs and u != k] for k, v in needs.items()})
    if cycle:
        problems.append(doc.at(("nodes", cycle[0], "needs"),
                               "cycle in `needs:`: " + " -> ".join(cycle)
                               + "; remove one of these dependencies"))
    # With a cycle "upstream" means nothing; expressions are still parsed and checked.
    ancestors = None if cycle else ancestor_sets(needs)
    inputs: dict[str, Any] = raw["inputs"] if isinstance(raw.get("inputs"), dict) else {}
    for nid, node in nodes.items():
        if not isinstance(node, dict):
            continue
        problems += _check_uses(doc, nid, node, adapters)
        upstream = None if ancestors is None else ancestors.get(nid, frozenset())
        problems += _check_expressions(doc, nid, node, upstream, inputs)
    return problems


def _needs_of(node: Any) -> list[str]:
    needs = node.get("needs") if isinstance(node, dict) else None
    return [n for n in needs if isinstance(n, str)] if isinstance(needs, list) else []


def _check_ids_and_needs(doc: Located, nodes: dict[str, Any],
                         needs: dict[str, list[str]]) -> Iterator[Problem]:
    for nid, ups in needs.items():
        if not isinstance(nid, str):
            yield doc.at(("nodes", nid), f"node id {nid!r} is read as a {type(nid).__name__}; "
                                         "node ids are strings: quote it")
        elif not re.match(SLUG, nid):
            yield doc.at(("nodes", nid), f"bad node id `{nid}`: use letters, digits, `_` or `-`, "
                                         "starting with a letter")
        for i, up in enumerate(ups):
            if up == nid:
                yield doc.at(("nodes", nid, "needs", i), f"node `{nid}` needs itself")
            elif up not in nodes:
                known = ", ".join(sorted(map(str, nodes)))
                yield doc.at(("nodes", nid, "needs", i),
                             f"node `{nid}` needs `{up}`, which is not a node of this flow "
                             f"(nodes: {known})")


def _check_uses(doc: Located, nid: str, node: dict[str, Any],
                adapters: AdapterLookup) -> list[Problem]:
    uses = node.get("uses")
    if not isinstance(uses, str) or uses == DECISION_KIND:  # a decision has no adapter
        return []
    adapter = adapters(uses)
    if isinstance(adapter, str):
        return [doc.at(("nodes", nid, "uses"), f"node `{nid}`: {adapter}")]
    problems = _check_retry_mode(doc, nid, node, adapter)
    params = node.get("with", {})
    if not isinstance(params, dict):
        return problems
    try:
        adapter.params_model.model_validate(params)
    except ValidationError as exc:
        problems += [doc.at(("nodes", nid, "with", *err["loc"]), f"node `{nid}` with: {_msg(err)}")
                     for err in exc.errors() if not _is_templated(params, err["loc"])]
    return problems


def _check_retry_mode(doc: Located, nid: str, node: dict[str, Any],
                      adapter: type[Adapter]) -> list[Problem]:
    retry = node.get("retry")
    mode = retry.get("mode") if isinstance(retry, dict) else None
    if mode in (None, RetryMode.NEW) or mode in adapter.retry_modes:
        return []
    offered = ", ".join(sorted({RetryMode.NEW, *adapter.retry_modes}))
    return [doc.at(("nodes", nid, "retry", "mode"),
                   f"node `{nid}`: `uses: {adapter.kind}` has no retry mode {mode!r} "
                   f"(it offers: {offered})")]


def _is_templated(params: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    """Type errors on values that are still `{{ }}` templates are checked after rendering."""
    value: Any = params
    for part in loc:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            return False
    return isinstance(value, str) and has_expression(value)


def _msg(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _check_expressions(doc: Located, nid: str, node: dict[str, Any],
                       upstream: frozenset[str] | None,
                       inputs: dict[str, Any]) -> Iterator[Problem]:
    params = node.get("with", {})
    yield from _check_code(doc, nid, params if isinstance(params, dict) else {})
    templates = strings_in(params, ("with",))
    gate = node.get("approval")
    if isinstance(gate, dict):  # its subject and body render from the same context
        templates += [(("approval", key), gate[key]) for key in ("subject", "body")
                      if isinstance(gate.get(key), str)]
    if isinstance(node.get("if"), str):
        templates.append((("if",), condition_template(node["if"])))
    for path, text in templates:
        where = ("nodes", nid, *path)
        try:
            refs = references(text)
        except ExpressionError as exc:
            yield doc.at(where, f"node `{nid}`: {exc}")
            continue
        if SECRET_FUNCTION in refs.unknown_names:
            yield from _check_secret(doc, where, nid, text)
        for name in sorted(refs.unknown_names - {SECRET_FUNCTION}):
            yield doc.at(where, f"node `{nid}`: unknown name `{name}` in expression; "
                                "use `inputs.<name>`, `nodes.<id>.outputs.<key>` or `run.id`")
        for ref in sorted(refs.nodes - upstream if upstream is not None else ()):
            yield doc.at(where, f"node `{nid}`: expression refers to node `{ref}`, which is not "
                                f"upstream of `{nid}`; add it to `needs:` (directly or through "
                                "another node)")
        for name in sorted(refs.inputs - set(inputs)):
            yield doc.at(where, f"node `{nid}`: expression refers to input `{name}`, which the "
                                "flow does not declare under `inputs:`")


def _check_secret(doc: Located, where: tuple[Any, ...], nid: str, text: str) -> Iterator[Problem]:
    """A secret is a whole value under `with:`, and never a command line: pasted into a
    command it would be visible to every user of the host (`ps`, /proc/<pid>/cmdline)."""
    example = "pass it through the environment: `env: {TOKEN: \"{{ secret('TOKEN') }}\"}`"
    if where[2] != "with" or secret_name(text) is None:
        yield doc.at(where, f"node `{nid}`: `secret()` must be the whole value of a `with:` "
                            f"key, as `\"{{{{ secret('NAME') }}}}\"` alone; {example}")
    elif where[3] in (SHELL_COMMAND_KEY, INLINE_SCRIPT_KEY):
        yield doc.at(where, f"node `{nid}`: a secret cannot be part of `{where[3]}`; {example}")


def _check_code(doc: Located, nid: str, params: dict[str, Any]) -> Iterator[Problem]:
    """Values never pasted into code: an inline script, an interpreter's words, the code
    item of an argv `command` that runs an interpreter (a shell's is quoted instead)."""
    via_env = ("pass them through `env:` (e.g. `env: {DAY: \"{{ inputs.day }}\"}` and "
               "`$DAY` in the script)")
    inline = params.get(INLINE_SCRIPT_KEY)
    if isinstance(inline, str) and has_expression(inline):
        yield doc.at(("nodes", nid, "with", INLINE_SCRIPT_KEY),
                     f"node `{nid}`: `{{{{ }}}}` in an inline script would paste values into "
                     f"code; {via_env}")
    interpreter = params.get(INTERPRETER_KEY)
    if isinstance(interpreter, str) and has_expression(interpreter):
        yield doc.at(("nodes", nid, "with", INTERPRETER_KEY),
                     f"node `{nid}`: `interpreter` is split into words, so a value could add "
                     f"options or commands; write it literally and {via_env}")
    command = params.get(SHELL_COMMAND_KEY)
    code = code_item(command) if isinstance(command, list) else None
    if code is not None and not code[1] and isinstance(command[code[0]], str) \
            and has_expression(command[code[0]]):
        program = program_name(str(command[0]))
        yield doc.at(("nodes", nid, "with", SHELL_COMMAND_KEY, code[0]),
                     f"node `{nid}`: this item is {program} code, and `{{{{ }}}}` in it would "
                     "paste values into that code; pass them through `env:` (e.g. `env: "
                     "{DAY: \"{{ inputs.day }}\"}`) and read the variable in the code")
