"""Deep links into a foreign system's UI: what adapters share to build them (see
`Adapter.run_link` and `Adapter.attempt_link`, used by `interlock trace`)."""

from __future__ import annotations

from urllib.parse import quote

# Characters RFC 3986 allows in a path segment as they are (Airflow run ids hold `:` and `+`).
_SEGMENT_SAFE = ":@!$&'()*+,;=~"


def segment(text: str) -> str:
    """``text`` as one path segment of a URL (a `/` in it is quoted)."""
    return quote(text, safe=_SEGMENT_SAFE)
