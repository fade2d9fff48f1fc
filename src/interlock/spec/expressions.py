"""Sandboxed `{{ }}` expressions: rendering node parameters and finding what they refer to.

Templates run in Jinja2's immutable sandbox (no attribute access to Python internals, no
mutation) with strict undefined, so a missing output is an error rather than "".
A string that is exactly one `{{ expr }}` renders to the expression's native value
(a number stays a number); any other string renders to a string.

Shell command lines: a string `command:` in a node's `with:` is run by a shell, so every
`{{ }}` in it renders as ONE shell-quoted word (`render_params`): a value can never change
the command's shape (`; id`, `$(...)`, backticks, newlines stay literal text). Values are
not rendered into inline `script:` bodies at all (`spec.checks` refuses it): pass them
through `env:`.

Secrets: `{{ secret('NAME') }}` is a reference, not a value. It must be a whole value in
`with:` (never part of a command line or of another expression); rendering keeps it as
written, so run records hold only the reference, and the worker resolves it at submit
(`interlock.secrets`). Where it sits is read from the flow, never from rendered values, so
an input that spells a reference resolves nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Undefined, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from interlock.errors import ExpressionError
from interlock.spec.commands import code_item

# Names an expression may use at its top level.
CONTEXT_NAMES = frozenset({"inputs", "nodes", "run"})

SHELL_COMMAND_KEY = "command"  # `with.command` as a string is a shell command line
INLINE_SCRIPT_KEY = "script"   # `with.script` is an inline program: no expressions in it
INTERPRETER_KEY = "interpreter"  # `with.interpreter` is split into words: no expressions
SECRET_FUNCTION = "secret"     # `{{ secret('NAME') }}`: a reference the worker resolves
SECRET_NAME = r"[A-Za-z_][A-Za-z0-9_.\-/]{0,127}"
_SECRET_REF = re.compile(r"^\{\{\s*" + SECRET_FUNCTION + r"\(\s*(?P<q>['\"])(?P<name>"
                         + SECRET_NAME + r")(?P=q)\s*\)\s*\}\}$")


def shell_word(value: Any) -> str:
    """One shell word holding the text Jinja would have printed for ``value``."""
    return shlex.quote(str(value))  # a strict Undefined raises here, with Jinja's message


_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_SHELL_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                           finalize=shell_word)
_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}).)*)\}\}\s*$", re.DOTALL)


def has_expression(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=4096)
def _compile_template(text: str, shell: bool = False) -> Any:
    try:
        return (_SHELL_ENV if shell else _ENV).from_string(text)
    except TemplateError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc}") from exc


@lru_cache(maxsize=4096)
def _compile_expression(expr: str) -> Any:
    try:
        return _ENV.compile_expression(expr, undefined_to_none=False)
    except TemplateError as exc:
        raise ExpressionError(f"cannot parse expression {expr.strip()!r}: {exc}") from exc


def secret_name(text: str) -> str | None:
    """NAME when ``text`` is exactly `{{ secret('NAME') }}`, else None."""
    match = _SECRET_REF.match(text.strip())
    return match["name"] if match else None


def secret_paths(params: Any) -> list[tuple[tuple[Any, ...], str]]:
    """(path, NAME) of every secret reference in a node's `with:`."""
    return [(path, name) for path, text in strings_in(params)
            if (name := secret_name(text)) is not None]


def render_string(text: str, context: dict[str, Any], *, shell: bool = False) -> Any:
    """``shell``: the text is a shell command line; each `{{ }}` becomes one quoted word."""
    if not has_expression(text) or secret_name(text) is not None:
        return text  # a secret reference stays a reference until the worker resolves it
    single = None if shell else _SINGLE.match(text)
    try:
        if shell:
            return _compile_template(text, True).render(**context)
        if single:
            value = _compile_expression(single["expr"])(**context)
            if isinstance(value, Undefined):
                str(value)  # strict undefined: raises with Jinja's own message
            return value
        return _compile_template(text).render(**context)
    except UndefinedError as exc:
        raise ExpressionError(f"in {text!r}: {exc.message}") from exc
    except SecurityError as exc:
        raise ExpressionError(f"in {text!r}: not allowed: {exc}") from exc
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError(f"expression nested too deeply: {text[:60]!r}...") from None
    except Exception as exc:  # a filter or operator failing on the data it was given
        raise ExpressionError(f"in {text!r}: {type(exc).__name__}: {exc}") from exc


def render_params(params: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """A node's `with:` rendered; a string `command` as a shell command line, and so is the
    script item of an argv `command` that starts a shell (`[sh, -c, SCRIPT]`)."""
    rendered = {}
    for key, value in params.items():
        if key == SHELL_COMMAND_KEY and isinstance(value, str):
            rendered[key] = render_string(value, context, shell=True)
        elif key == SHELL_COMMAND_KEY and isinstance(value, list):
            code = code_item(value)
            shell_at = code[0] if code is not None and code[1] else None
            rendered[key] = [render_string(v, context, shell=True)
                             if i == shell_at and isinstance(v, str) else render(v, context)
                             for i, v in enumerate(value)]
        else:
            rendered[key] = render(value, context)
    return rendered


def render(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside ``value`` (dicts and lists are walked)."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context) for v in value]
    return value


def evaluate_condition(text: str, context: dict[str, Any]) -> bool:
    """An `if:`: either `{{ expr }}` or a bare expression."""
    expr = text if has_expression(text) else "{{ " + text + " }}"
    result = render_string(expr, context)
    if isinstance(result, str):
        return result.strip().lower() not in {"", "false", "0", "no", "none"}
    return bool(result)


def condition_template(text: str) -> str:
    return text if has_expression(text) else "{{ " + text + " }}"


@dataclass
class References:
    """What a template refers to: used to check flows before they run."""

    nodes: set[str] = field(default_factory=set)
    inputs: set[str] = field(default_factory=set)
    unknown_names: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # every top-level name used


def references(text: str) -> References:
    """Static references in one template string; raises ExpressionError if it does not parse."""
    try:
        ast = _ENV.parse(text)
        # Compiles the template too: unknown filters and tests are found here.
        undeclared = meta.find_undeclared_variables(ast)
    except TemplateError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.message}") from exc
    except RecursionError:
        raise ExpressionError(f"expression nested too deeply: {text[:60]!r}...") from None
    for tag in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise ExpressionError(f"in {text!r}: `{{% {type(tag).__name__.lower()} %}}` is not "
                              "supported: flow expressions cannot load other templates")
    refs = References(unknown_names=undeclared - CONTEXT_NAMES, names=set(undeclared))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        root, key = node.node, _static_key(node)
        if isinstance(root, nodes.Name) and key is not None:
            if root.name == "nodes":
                refs.nodes.add(key)
            elif root.name == "inputs":
                refs.inputs.add(key)
    return refs


def _static_key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def strings_in(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], str]]:
    """Every (path, string) inside a nested value that holds an expression."""
    if isinstance(value, str):
        return [(path, value)] if has_expression(value) else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in strings_in(v, (*path, k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in strings_in(v, (*path, i))]
    return []
