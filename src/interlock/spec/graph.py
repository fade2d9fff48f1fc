"""A flow's nodes as a DAG: order, upstream and downstream sets, cycle finding."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spec imports this module (find_cycle); only annotations need the models
    from interlock.spec.models import Flow, Node


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a path `[a, b, ..., a]` (a needs b needs ... needs a), or None.

    Iterative depth-first search: flows with thousands of chained nodes must not hit
    Python's recursion limit.
    """
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(needs, WHITE)
    for start in needs:
        if colour[start] != WHITE:
            continue
        path: list[str] = [start]
        pending: list[Iterator[str]] = [iter(needs.get(start, ()))]
        colour[start] = GREY
        while pending:
            up = next(pending[-1], None)
            if up is None:
                colour[path.pop()] = BLACK
                pending.pop()
            elif colour.get(up) == GREY:
                return [*path[path.index(up):], up]
            elif colour.get(up) == WHITE:
                colour[up] = GREY
                path.append(up)
                pending.append(iter(needs.get(up, ())))
    return None


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes with every node after all it needs; ties keep declaration order.

    ``needs`` must be acyclic; names it does not define are ignored.
    """
    done: set[str] = set()
    order: list[str] = []
    for start in needs:
        if start in done:
            continue
        done.add(start)
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(needs.get(start, ())))]
        while stack:
            node, ups = stack[-1]
            up = next(ups, None)
            if up is None:
                order.append(node)
                stack.pop()
            elif up in needs and up not in done:
                done.add(up)
                stack.append((up, iter(needs.get(up, ()))))
    return order


def ancestor_sets(needs: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    """Every node's transitive upstream set (``needs`` must be acyclic)."""
    result: dict[str, frozenset[str]] = {}
    for nid in topological_order(needs):  # upstream nodes come first, so their sets are ready
        direct = [u for u in needs.get(nid, ()) if u in needs and u != nid]
        result[nid] = frozenset(direct).union(*(result[u] for u in direct))
    return result


@dataclass(frozen=True)
class FlowGraph:
    """A validated flow's graph (acyclic, every `needs:` resolved)."""

    flow: Flow

    @cached_property
    def order(self) -> list[str]:
        return topological_order({nid: n.needs for nid, n in self.flow.nodes.items()})

    def node(self, node_id: str) -> Node:
        return self.flow.nodes[node_id]

    def upstream(self, node_id: str) -> list[str]:
        return self.flow.nodes[node_id].needs

    @cached_property
    def ancestors(self) -> dict[str, frozenset[str]]:
        return ancestor_sets({nid: n.needs for nid, n in self.flow.nodes.items()})
