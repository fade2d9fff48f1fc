"""A node's secret references -> the values its adapter gets, and the masker for the rest.

Where the references are is read from the node's `with:` in the flow, never from the
rendered values: a run input that spells `{{ secret('X') }}` stays that literal text.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from interlock.adapters.masking import Masker
from interlock.errors import Rejected
from interlock.secrets.backends import SecretNotFound, SecretsBackend, backend
from interlock.spec.expressions import secret_paths

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    params: dict[str, Any]                                  # the `with:` the adapter gets
    values: tuple[str, ...] = field(default=(), repr=False)  # every resolved value
    masker: Masker = field(default_factory=lambda: Masker(()), repr=False)


def resolve(node_with: dict[str, Any], params: dict[str, Any],
            source: SecretsBackend | None = None) -> Resolved:
    """``params`` (the rendered `with:`, references kept) with every reference resolved.
    Raises :class:`SecretNotFound` naming the first secret that does not resolve."""
    refs = secret_paths(node_with)
    if not refs:
        return Resolved(params)
    source = source or backend()
    values: dict[str, str] = {}
    resolved = copy.deepcopy(params)
    for path, name in refs:
        if name not in values:
            values[name] = source.get(name)
        _put(resolved, path, values[name])
    return Resolved(resolved, tuple(values.values()), Masker(values.values()))


def masker_for(node_with: dict[str, Any], source: SecretsBackend | None = None) -> Masker:
    """The masker for what a node's job reports later (a poll, a log read): its secrets as
    they resolve now. One that no longer resolves cannot be masked; that is logged."""
    names = sorted({name for _, name in secret_paths(node_with)})
    if not names:
        return Masker(())
    source = source or backend()
    values = []
    for name in names:
        try:
            values.append(source.get(name))
        except SecretNotFound as exc:
            log.warning("cannot mask secret %r: %s", name, exc)
    return Masker(values)


def _put(params: Any, path: tuple[Any, ...], value: str) -> None:
    target = params
    try:
        for part in path[:-1]:
            target = target[part]
    except (KeyError, IndexError, TypeError):
        target = None
    if not isinstance(target, dict | list):
        raise Rejected(f"`with.{'.'.join(map(str, path))}`: cannot place a secret there")
    target[path[-1]] = value
