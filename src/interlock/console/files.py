"""Which built file answers a console path: an asset, the single page (for the client's
own routes), a 404, or the 503 page that says how to build the console when it is missing.

Paths come from the request: a path resolving outside the build folder is never served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
INDEX = "index.html"
ASSETS = "assets"
BUILD_COMMAND = "npm --prefix console ci && npm --prefix console run build"
MAX_PATH = 300  # characters of a console path worth looking at

MISSING = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Interlock console not built</title></head>
<body><h1>The Interlock console is not built</h1>
<p>This server has the API (<a href="/docs">/docs</a>) but no console files. From the
repository's root, build them with:</p>
<pre>{BUILD_COMMAND}</pre>
<p>then restart <code>interlock serve</code>.</p></body></html>
"""


@dataclass(frozen=True)
class Found:
    """What to answer: a file (``path``), or a status with no file."""

    status: int
    path: Path | None = None
    asset: bool = False  # a hashed, immutable asset under assets/ (else page headers)


def built(root: Path | None = None) -> bool:
    return ((root or STATIC) / INDEX).is_file()


def lookup(path: str, root: Path | None = None) -> Found:
    """The file for ``path`` (the URL path without its leading slash) under ``root``
    (default: the build in this package)."""
    root = root or STATIC
    if not built(root):
        return Found(503)
    if len(path) > MAX_PATH or "\x00" in path or "\\" in path:
        return Found(404)
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        return Found(404)
    if path.startswith(ASSETS + "/") or path == ASSETS:
        return Found(200, target, asset=True) if target.is_file() else Found(404)
    if path and target.is_file() and target.name != INDEX:
        return Found(200, target)  # favicon and the like, next to the page: not hashed
    if "." in path.rsplit("/", 1)[-1]:
        return Found(404)  # a missing file, not a client route
    return Found(200, base / INDEX)
