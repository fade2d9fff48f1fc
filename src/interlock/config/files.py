"""One cache for configuration files: parsed once, parsed again when the file changes.

Every configuration file (systems, status mappings, cron jobs, dataset mappings) is read
through :func:`cached_file` or :func:`load_yaml`. An entry is keyed by the file's absolute path
and the parser, and stays valid while the file's modification time (in nanoseconds) and
size are unchanged. One lock guards the table and the parse, so threads never see a half
written entry and a file is parsed once per change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
Stamp = tuple[int, int]  # (st_mtime_ns, st_size)

_lock = threading.RLock()  # re-entrant: a parser may read another file through the cache
_entries: dict[tuple[Path, Callable[[Path], Any]], tuple[Stamp, Any]] = {}


def cached_file(path: str | Path, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, reused until the file changes; OSError (FileNotFoundError...) as is.

    ``parse`` must be a module-level function (it is part of the key), and its result must
    not be mutated by callers: every caller shares it.
    """
    resolved = Path(path).absolute()
    stat = resolved.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        hit = _entries.get((resolved, parse))
        if hit is not None and hit[0] == stamp:
            return hit[1]  # type: ignore[no-any-return]
        value = parse(resolved)
        _entries[(resolved, parse)] = (stamp, value)
        return value


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``, uncached (OSError, yaml.YAMLError)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml(path: str | Path) -> Any:
    """The YAML document in ``path``, cached; OSError or yaml.YAMLError as raised."""
    return cached_file(path, read_yaml)


def clear() -> None:
    """Forget every entry (what changes how files are parsed, e.g. `set_url_rule`, calls it)."""
    with _lock:
        _entries.clear()
