"""Facts, not payloads: what the audit trail keeps of content that came from outside.

A cron job's output, an Airflow `conf`, a foreign error text, a run's inputs: payloads can
hold anything (secrets, personal data, megabytes), and the audit trail is kept for years
and exported whole. The trail keeps a **fact** about such a value instead of the value:

    {"sha256": "<hex>", "bytes": 1234}

`bytes` is the size of the value's UTF-8 text (a string), of the bytes themselves, or of
its canonical JSON (sorted keys, no spaces, UTF-8) for anything else; `sha256` is the hash
of those same bytes. Whoever holds the value (the run store, the foreign system, the cron
host) can prove it is the one audited; the trail alone cannot give it away.

`fact` is the one helper; the others decide what is a payload:

- `fields`: the top-level fields of a foreign message (a pushed event, an entry of a
  foreign log). Numbers, booleans, null and short texts are facts and kept; the
  `PAYLOAD_KEYS`, lists, mappings and long texts become facts.
- `bounded`: a user-supplied value (run inputs, trigger contexts), kept as it is up to
  `MAX_VALUE_BYTES` per value and `MAX_DEPTH` levels; what is larger or deeper becomes
  its fact, and a whole over `MAX_TOTAL_BYTES` becomes one fact.
- `short`: one of Interlock's own texts about foreign input (a refusal's reason), cut.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from interlock.config.limits import MAX_JSON_DEPTH, too_deep

SHA256, BYTES = "sha256", "bytes"  # the two keys of a fact

# Fields of foreign messages that are content, whatever their size: hashed, never kept.
PAYLOAD_KEYS = frozenset({
    "conf",          # Airflow's DAG run configuration (anything its triggerer passed)
    "error",         # a foreign system's error text (may quote data or log lines)
    "exception", "traceback", "message",
    "extra",         # Airflow's event log detail (a trigger's conf, a variable's value)
    "log", "output", "output_tail", "stdout", "stderr",  # what a job printed
})
MAX_TEXT_BYTES = 512     # a longer text field of a foreign message is hashed
MAX_VALUE_BYTES = 1024   # a run input value (or part of one) larger than this is hashed
MAX_DEPTH = 4            # levels of lists/mappings kept in each run input value
MAX_TOTAL_BYTES = 16384  # a bounded whole still larger than this is one fact
MAX_REASON_CHARS = 300   # Interlock's own text about a refused message, cut past this
CUT = "…"


def encoded(value: Any) -> bytes:
    """The bytes a fact describes: UTF-8 text, bytes as they are, else canonical JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8", "surrogatepass")


def fact(value: Any) -> dict[str, Any]:
    """``value`` as a fact: its sha256 and size, never its content."""
    data = encoded(value)
    return {SHA256: hashlib.sha256(data).hexdigest(), BYTES: len(data)}


def is_fact(value: Any) -> bool:
    return isinstance(value, dict) and value.keys() == {SHA256, BYTES}


def fields(message: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level fields of a foreign message, each kept or turned into its fact."""
    kept = {str(key)[:MAX_TEXT_BYTES]: value if _plain(str(key), value) else fact(value)
            for key, value in message.items()}
    return kept if len(encoded(kept)) <= MAX_TOTAL_BYTES else fact(dict(message))


def _plain(key: str, value: Any) -> bool:
    if value is None:
        return True  # no content to hide: `error: null` says there was none
    if key in PAYLOAD_KEYS:
        return False
    if isinstance(value, (bool, int, float)):
        return True
    return isinstance(value, str) and len(encoded(value)) <= MAX_TEXT_BYTES


def bounded(value: Any, *, max_bytes: int = MAX_VALUE_BYTES, max_depth: int = MAX_DEPTH,
            max_total: int = MAX_TOTAL_BYTES) -> Any:
    """``value`` with every part over ``max_bytes`` or nested past ``max_depth`` levels
    replaced by its fact (the fact counts as one level); over ``max_total`` in all, the
    whole is one fact."""
    if _fits(value, max_bytes, max_depth):
        return value  # the common case: one look, no copy
    out = _bounded(value, max_bytes, max(1, max_depth))
    return out if len(encoded(out)) <= max_total else fact(value)


def bounded_each(values: Mapping[str, Any]) -> Any:
    """A mapping of user-supplied values (a run's inputs), each one `bounded` on its own
    (its name kept), the whole within `MAX_TOTAL_BYTES`."""
    out = {str(name)[:MAX_TEXT_BYTES]: _bounded(v, MAX_VALUE_BYTES, MAX_DEPTH)
           for name, v in values.items()}
    return out if len(encoded(out)) <= MAX_TOTAL_BYTES else fact(dict(values))


def within_record(value: Any) -> Any:
    """The audit append's own net, for every record: no part over `MAX_TOTAL_BYTES`, none
    deeper than a stored value may be (`MAX_JSON_DEPTH`)."""
    return bounded(value, max_bytes=MAX_TOTAL_BYTES, max_depth=MAX_JSON_DEPTH,
                   max_total=MAX_TOTAL_BYTES * 4)


def short(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """One of Interlock's own texts (a refusal's reason), at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit - len(CUT)] + CUT


def _bounded(value: Any, max_bytes: int, allowed: int) -> Any:
    """``allowed`` is how many levels of lists/mappings ``value`` may still take (>= 1)."""
    if isinstance(value, (dict, list, tuple)):
        if _fits(value, max_bytes, allowed):
            return value
        if allowed < 2 or (isinstance(value, dict)
                           and any(len(str(k)) > MAX_TEXT_BYTES for k in value)):
            return fact(value)
        if isinstance(value, dict):
            return {k: _bounded(v, max_bytes, allowed - 1) for k, v in value.items()}
        return [_bounded(v, max_bytes, allowed - 1) for v in value]
    if isinstance(value, (str, bytes)) and len(encoded(value)) > max_bytes:
        return fact(value)
    return value


def _fits(value: Any, max_bytes: int, levels: int) -> bool:
    """Whether ``value`` may be kept whole: within ``levels`` and ``max_bytes``."""
    if isinstance(value, (dict, list, tuple)) and too_deep(value, levels):
        return False
    return not isinstance(value, (str, bytes, dict, list, tuple)) \
        or len(encoded(value)) <= max_bytes
