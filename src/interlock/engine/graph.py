"""A flow's nodes as a DAG: order, upstream and downstream sets, cycle finding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # spec imports this module (find_cycle); only annotations need the models
    from interlock.spec.models import Flow, Node


def find_cycle(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a path `[a, b, ..., a]` (a needs b needs ... needs a), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(needs, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for up in needs.get(node, ()):
            if colour.get(up) == GREY:
                return [*stack[stack.index(up):], up]
            if colour.get(up) == WHITE and (found := visit(up)):
                return found
        stack.pop()
        colour[node] = BLACK
        return None

    for start in needs:
        if colour[start] == WHITE and (found := visit(start)):
            return found
    return None


def topological_order(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes with every node after all it needs; ties keep declaration order."""
    done: set[str] = set()
    order: list[str] = []

    def visit(node: str) -> None:
        if node in done:
            return
        done.add(node)
        for up in needs.get(node, ()):
            if up in needs:
                visit(up)
        order.append(node)

    for node in needs:
        visit(node)
    return order


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
        result: dict[str, frozenset[str]] = {}
        for nid in self.order:  # upstream nodes come first, so their sets are ready
            direct = self.flow.nodes[nid].needs
            result[nid] = frozenset(direct).union(*(result[u] for u in direct))
        return result
