"""Node ids in Marquez's form, `job:<namespace>:<name>` and `dataset:<namespace>:<name>`.

Namespaces and names may themselves hold colons (`postgres://db:5432`), so an id is split
at every colon and the store says which split exists (`interlock.lineage.queries.resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from interlock.store.tables.lineage import NAME_MAX, NAMESPACE_MAX

_ID_MAX = 1000


class NodeKind(StrEnum):
    JOB = "job"
    DATASET = "dataset"


_KINDS = {kind.value for kind in NodeKind}


class Stream(StrEnum):
    """Which way a traversal goes, following the data."""

    UPSTREAM = "upstream"      # towards what a node reads, and who wrote that
    DOWNSTREAM = "downstream"  # towards what a node writes, and who reads that


@dataclass(frozen=True)
class NodeRef:
    """A job or dataset the store holds."""

    kind: NodeKind
    id: int          # row id in lineage_jobs or lineage_datasets
    namespace: str
    name: str

    @property
    def node_id(self) -> str:
        return node_id(self.kind, self.namespace, self.name)


def node_id(kind: NodeKind, namespace: str, name: str) -> str:
    return f"{kind.value}:{namespace}:{name}"


def candidates(text: str) -> tuple[NodeKind, list[tuple[str, str]]]:
    """The kind and every (namespace, name) split of a node id; ValueError if malformed."""
    prefix, sep, rest = text.partition(":")
    if not sep or prefix not in _KINDS or len(text) > _ID_MAX:
        raise ValueError(f"node id `{text[:200]}` is malformed: expected "
                         "`job:<namespace>:<name>` or `dataset:<namespace>:<name>`")
    splits = [(rest[:i], rest[i + 1:]) for i, char in enumerate(rest)
              if char == ":" and 0 < i < len(rest) - 1]
    splits = [(ns, name) for ns, name in splits
              if len(ns) <= NAMESPACE_MAX and len(name) <= NAME_MAX]
    if not splits:
        raise ValueError(f"node id `{text[:200]}` is malformed: expected "
                         f"`{prefix}:<namespace>:<name>` with both parts non-empty")
    return NodeKind(prefix), splits
