"""YAML to Python values, keeping where each value came from (for `file:line:col`).

Lines are counted the way editors and grep count them (by `\\n`), not the way PyYAML does
(it also breaks at U+2028, U+0085 and lone CR). Every failure PyYAML can raise while reading
hostile input becomes a Problem, never an exception.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from interlock.config.limits import MAX_JSON_DEPTH
from interlock.errors import Problem

Path = tuple[Any, ...]
SEXAGESIMAL_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
MERGE_TAG = "tag:yaml.org,2002:merge"
# Mappings and lists deeper than this are refused: the JSON limit plus room for the
# document's own levels (`nodes.<id>.with`), so what a file holds can be sent as JSON.
MAX_DEPTH = MAX_JSON_DEPTH + 8
# Aliases may repeat values, but the document may not expand past this many values more
# than it has bytes (a file without aliases never can): 10 levels of 10 aliases ("a billion
# laughs") is refused before any of it is expanded.
ALIAS_SLACK = 10_000


class _TooLarge(Exception):
    def __init__(self, node: Node, size: int):
        self.node, self.size = node, size


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


class _Lines:
    """Character offset -> (line, column), both from 1, counting lines by `\\n`."""

    def __init__(self, text: str):
        self.starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]

    def at(self, index: int) -> tuple[int, int]:
        line = bisect_right(self.starts, index)
        return line, index - self.starts[line - 1] + 1


def load_located(text: str, file: str) -> Located:
    lines = _Lines(text)
    located = Located(None, file)
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        located.problems.append(_yaml_problem(exc, file, lines))
        return located
    try:
        root = loader.get_single_node()
        if root is None:
            located.problems.append(Problem(file, 1, 1,
                                            "the file is empty: a flow needs `id` and `nodes`"))
            return located
        _expanded_size(root, len(text) + ALIAS_SLACK)
        located.value = _Converter(loader, located, lines).convert(root, ())
    except yaml.YAMLError as exc:
        located.problems.append(_yaml_problem(exc, file, lines))
    except _TooLarge as exc:
        line, col = lines.at(exc.node.start_mark.index)
        located.problems.append(Problem(file, line, col, (
            f"the aliases (`*name`) here expand to more than {exc.size} values, far more "
            "than the file holds; refused (a \"billion laughs\" document?): write the values "
            "out or use fewer aliases")))
    except RecursionError:
        line, col = lines.at(loader.get_mark().index)
        located.problems.append(Problem(file, line, col,
                                        "the document is nested too deeply to read"))
    finally:
        loader.dispose()
    return located


def _expanded_size(root: Node, limit: int) -> int:
    """How many values ``root`` holds once every alias is expanded, each shared node
    counted once per use but sized once (memoized); _TooLarge at the innermost node past
    ``limit``. A node that contains itself counts 1 here (the converter reports it)."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # in progress: a recursive alias
        total = 1
        if isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > limit:
            raise _TooLarge(node, limit)
        sizes[id(node)] = total
        return total

    return size(root)


def _yaml_problem(exc: yaml.YAMLError, file: str, lines: _Lines) -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = lines.at(exc.position)
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return Problem(file, line, col, f"invalid YAML: the control character U+{code:04X} "
                                        "is not allowed; remove it")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = lines.at(mark.index) if mark is not None else (1, 1)
    opened = getattr(exc, "context_mark", None)
    where = ""
    if opened is not None and mark is not None and opened.index != mark.index:
        where = " (opened at line {}, col {})".format(*lines.at(opened.index))
    return Problem(file, line, col, f"invalid YAML: {_reason(exc)}{where}")


def _reason(exc: yaml.YAMLError) -> str:
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    text = " ".join(p for p in parts if p) or str(exc).splitlines()[0]
    return " ".join(text.split())


class _Converter:
    def __init__(self, loader: yaml.SafeLoader, out: Located, lines: _Lines):
        self.loader, self.out, self.lines = loader, out, lines
        self.active: set[int] = set()  # nodes being converted: an alias back to one is a cycle

    def mark(self, node: Node) -> tuple[int, int]:
        return self.lines.at(node.start_mark.index)

    def problem(self, node: Node, message: str) -> None:
        line, col = self.mark(node)
        self.out.problems.append(Problem(self.out.file, line, col, message))

    def convert(self, node: Node, path: Path) -> Any:
        self.out.positions.setdefault(path, self.mark(node))
        if len(path) > MAX_DEPTH and not isinstance(node, ScalarNode):
            self.problem(node, f"nested deeper than {MAX_DEPTH} levels; flatten it")
            return None
        if id(node) in self.active:
            where = ".".join(map(str, path)) or "the document"
            self.out.problems.append(self.out.at(
                path, f"`{where}`: this alias refers to a node that contains it "
                      "(a recursive alias); copy the values instead"))
            return None
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            assert isinstance(node, SequenceNode)
            return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode) -> Any:
        if node.style is None and ":" in node.value and node.tag in SEXAGESIMAL_TAGS:
            # YAML 1.1 reads `1:30` as the number 90; nobody writing a flow means that.
            return node.value
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problem(node, f"invalid value: {_reason(exc)}")
        except (ValueError, TypeError, OverflowError) as exc:
            # e.g. `!!int three` or the impossible date 2024-02-30
            self.problem(node, f"invalid value {node.value!r} for tag {node.tag}: {exc}")
        return None

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        node.value = [(k, v) for k, v in node.value if self._mergeable(k, v)]
        try:
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys
        except yaml.YAMLError as exc:
            self.problem(node, f"invalid merge (`<<`): {_reason(exc)}")
            return {}
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problem(key_node, "keys must be plain strings, not lists or mappings")
                continue
            key = self.scalar(key_node)
            if not isinstance(key, str):
                # Keep the text as written so nothing else breaks, and say what YAML did.
                self.problem(key_node, f"key `{key_node.value}` is read as a "
                                       f"{type(key).__name__}; keys are strings: quote it "
                                       f"(\"{key_node.value}\")")
                key = key_node.value
            if key in result:
                self.problem(key_node, f"duplicate key `{key}`{_where(path)}")
                continue
            self.out.positions[(*path, key)] = self.mark(key_node)
            result[key] = self.convert(value_node, (*path, key))
        return result


    def _mergeable(self, key: Node, value: Node) -> bool:
        """False (and a problem) for a `<<` whose value is not a mapping or list of them."""
        if key.tag != MERGE_TAG:
            return True
        items = value.value if isinstance(value, SequenceNode) else [value]
        if all(isinstance(item, MappingNode) for item in items):
            return True
        self.problem(key, "invalid merge (`<<`): it needs a mapping or a list of mappings, "
                          "e.g. `<<: *base`")
        return False


def _where(path: Path) -> str:
    if path == ("nodes",):
        return " (node ids must be unique)"
    return f" in `{'.'.join(map(str, path))}`" if path else ""
