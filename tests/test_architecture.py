"""The layout's rules (docs/architecture.md), checked on the source: packages import each
other without cycles, the core never knows a concrete adapter, adapters use only the SDK,
files stay small and every module says what it is for."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "src" / "interlock"
ADAPTERS = ROOT / "adapters"
MAX_LINES = 400
SDK = "interlock.adapters"


def modules(root: Path, package: str) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        yield ".".join([package, *parts]) if parts else package, path


def core_modules() -> Iterator[tuple[str, Path]]:
    for name, path in modules(CORE, "interlock"):
        if ".store.migrations" not in name:
            yield name, path


def adapter_modules() -> Iterator[tuple[str, Path]]:
    for pkg in sorted(p for p in ADAPTERS.iterdir() if (p / "__init__.py").exists()):
        for name, path in modules(pkg, pkg.name):
            if ".airflow_plugin" in name or ".dagster_sensor" in name:
                continue  # installed into Airflow / Dagster, never imported by Interlock
            yield name, path


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, at any depth (imports inside functions count)."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_of(module: str) -> str | None:
    """`interlock.store.tables.runs` -> `store`; top-level modules are their own package."""
    parts = module.split(".")
    if parts[0] != "interlock" or len(parts) < 2:
        return None
    return parts[1]


def known_modules() -> set[str]:
    return {name for name, _ in core_modules()}


def package_graph() -> dict[str, set[str]]:
    known = known_modules()
    graph: dict[str, set[str]] = {}
    for name, path in core_modules():
        src = package_of(name)
        if src is None:
            continue
        for target in imports_of(path, name):
            dst = package_of(target)
            if dst and dst != src and target in known:
                graph.setdefault(src, set()).add(dst)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    assert "store" in graph and "dispatch" in graph  # the walk found the packages
    cycle = find_cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def adapter_kinds() -> dict[str, str]:
    """Adapter kind -> its top-level package, from the entry points."""
    return {ep.name: ep.value.split(":")[0].split(".")[0]
            for ep in entry_points(group="interlock.adapters")}


def test_all_seven_adapters_are_registered() -> None:
    assert set(adapter_kinds()) == {"script", "noop", "airflow", "dagster", "cron", "rpa",
                                    "agent"}


def test_core_never_imports_an_adapter_package() -> None:
    packages = set(adapter_kinds().values())
    offenders = [f"{name} imports {target}" for name, path in core_modules()
                 for target in imports_of(path, name) if target.split(".")[0] in packages]
    assert offenders == []


def code_strings(path: Path) -> Iterator[tuple[int, str]]:
    """String constants that are code, not prose: docstrings and help texts are skipped."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    prose: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            prose.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg in {"description", "help", "title"}:
            prose.update(id(n) for n in ast.walk(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in prose:
            yield node.lineno, node.value


def kind_pattern(kinds: set[str]) -> re.Pattern[str]:
    """A string that is an adapter kind, a system of that kind, or such a system prefix."""
    return re.compile(r"^(%s)(/[\w.-]*)?$" % "|".join(sorted(kinds)))


def test_kind_pattern_catches_kinds_and_systems() -> None:
    pattern = kind_pattern({"airflow", "cron"})
    assert all(pattern.match(s) for s in ("airflow", "cron/", "airflow/prod"))
    assert not any(pattern.match(s) for s in ("airflows", "an airflow", "crontab"))


# Core words that are spelled like an adapter kind, each where it is allowed and why.
CORE_VOCABULARY = {
    # The cron monitor (LATE/MISSED runs of legacy cron jobs: config/cron_jobs.py,
    # interlock.cron, /api/v1/cron) is the core's own; its systems' kind is one constant.
    ("src/interlock/config/cron_jobs.py", "cron"),
    # A schedule trigger's cron expression (`schedule: {cron: ...}`), not the adapter.
    ("src/interlock/triggers/schedule.py", "cron"),
    # The `with.script` key (an inline program body, where expressions are refused), which
    # any adapter may take; not the `script` adapter.
    ("src/interlock/spec/expressions.py", "script"),
    # "agent" as an actor: the duty of separation (whoever asked for a step may not approve
    # it), the `agent` root and the `agent:` principals of policies, the `agent` trigger of a
    # flow tool's run, the `interlock agent` command; not the `uses: agent` adapter.
    *{(f"src/interlock/{path}", "agent") for path in (
        "approvals/people.py", "cli/main.py", "operations/agents.py", "policies/context.py",
        "policies/engine.py", "policies/model.py", "policies/points.py",
        "triggers/types.py")},
}


def test_core_names_no_concrete_adapter_kind() -> None:
    pattern = kind_pattern(set(adapter_kinds()))
    offenders = [f"{path.relative_to(ROOT)}:{line}: {value!r}"
                 for name, path in core_modules() if name != "interlock.testing"
                 for line, value in code_strings(path) if pattern.match(value)
                 and (str(path.relative_to(ROOT)), value) not in CORE_VOCABULARY]
    assert offenders == []


def test_adapters_import_only_the_sdk_from_the_core() -> None:
    offenders = [f"{name} imports {target}" for name, path in adapter_modules()
                 for target in imports_of(path, name)
                 if target.split(".")[0] == "interlock" and target != "interlock"
                 and not (target == SDK or target.startswith(SDK + "."))]
    assert offenders == []


@pytest.mark.parametrize("root", [CORE, ADAPTERS], ids=["core", "adapters"])
def test_no_file_over_the_limit(root: Path) -> None:
    long = {str(p.relative_to(ROOT)): n for p in root.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_says_what_it_is_for() -> None:
    silent = [name for name, path in [*core_modules(), *adapter_modules()]
              if path.stat().st_size and not ast.get_docstring(ast.parse(path.read_text()))]
    assert silent == []


def test_api_and_cli_open_no_transaction() -> None:
    """Routes and commands call `interlock.operations`; only it opens sessions for them."""
    offenders = [f"{name} imports {target}" for name, path in core_modules()
                 if package_of(name) in {"api", "cli"}
                 for target in imports_of(path, name)
                 if target.startswith("interlock.store.db.session_scope")]
    assert offenders == []
