"""YAML to Python values, keeping where each value came from (for `file:line:col`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from interlock.errors import Problem

Path = tuple[Any, ...]


@dataclass
class Located:
    """A parsed document, the position of every path in it, and problems met on the way."""

    value: Any
    file: str
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def at(self, path: Path, message: str) -> Problem:
        """A problem placed at ``path``, or at its nearest located ancestor."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.positions:
                line, col = self.positions[path[:cut]]
                return Problem(self.file, line, col, message)
        return Problem(self.file, 1, 1, message)


def load_located(text: str, file: str) -> Located:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(p for p in (exc.context, exc.problem) if p)
        return Located(None, file, problems=[Problem(file, line, col, f"invalid YAML: {reason}")])
    except yaml.YAMLError as exc:
        return Located(None, file, problems=[Problem(file, 1, 1, f"invalid YAML: {exc}")])
    finally:
        loader.dispose()
    located = Located(None, file)
    if root is None:
        located.problems.append(Problem(file, 1, 1, "the file is empty: a flow needs `id` and `nodes`"))
        return located
    located.value = _convert(root, (), loader, located)
    return located


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _convert(node: Node, path: Path, loader: yaml.SafeLoader, out: Located) -> Any:
    out.positions.setdefault(path, _mark(node))
    if isinstance(node, MappingNode):
        return _convert_mapping(node, path, loader, out)
    if isinstance(node, SequenceNode):
        return [_convert(item, (*path, i), loader, out) for i, item in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        out.problems.append(out.at(path, f"invalid value: {exc}"))
        return None


def _convert_mapping(node: MappingNode, path: Path, loader: yaml.SafeLoader, out: Located) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolves `<<` merge keys
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True) if isinstance(key_node, ScalarNode) else None
        if not isinstance(key, str | int | float | bool) or key is None:
            line, col = _mark(key_node)
            out.problems.append(Problem(out.file, line, col, "keys must be plain strings"))
            continue
        if key in result:
            line, col = _mark(key_node)
            out.problems.append(Problem(out.file, line, col, f"duplicate key `{key}`{_where(path)}"))
            continue
        out.positions[(*path, key)] = _mark(key_node)
        result[key] = _convert(value_node, (*path, key), loader, out)
    return result


def _where(path: Path) -> str:
    if path == ("nodes",):
        return " (node ids must be unique)"
    return f" in `{'.'.join(map(str, path))}`" if path else ""
