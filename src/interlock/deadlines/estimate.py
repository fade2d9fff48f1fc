"""When a run (or one of its nodes) will finish, estimated from history (pure).

The finish is now plus the longest remaining path through the flow graph, where a node
already done costs nothing, a node in flight costs what is left of its p90 duration
(max(0, p90 - elapsed)) and a node not started costs its whole p90. The cause is the node
on that critical path that costs the most: the one to look at first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from interlock.spec.graph import FlowGraph


@dataclass(frozen=True)
class Progress:
    """Where one node is: done, in flight since `since`, or not started (neither)."""

    done: bool = False
    since: datetime | None = None  # its current attempt's creation, while in flight


@dataclass(frozen=True)
class Estimate:
    finish: datetime               # the estimated finish of what was asked for
    cause: str | None              # the costliest node on the critical path (None: all done)
    remaining_s: float             # finish - now, in seconds
    unknown: tuple[str, ...] = ()  # nodes not done without any history: costed at 0


def remaining_cost(p90_s: float | None, progress: Progress, now: datetime) -> float:
    if progress.done:
        return 0.0
    p90 = p90_s or 0.0
    if progress.since is None:
        return p90
    elapsed = max(0.0, (now - progress.since).total_seconds())
    return max(0.0, p90 - elapsed)


def estimate(graph: FlowGraph, progress: Mapping[str, Progress],
             p90: Mapping[str, float | None], now: datetime, *,
             target: str | None = None) -> Estimate:
    """The run's finish (``target`` None) or node ``target``'s finish."""
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    cost: dict[str, float] = {}
    for nid in graph.order:
        cost[nid] = remaining_cost(p90.get(nid), progress.get(nid, Progress()), now)
        ups = [u for u in graph.upstream(nid) if u in finish]
        before = max(ups, key=lambda u: finish[u], default=None)
        via[nid] = before
        finish[nid] = (finish[before] if before else 0.0) + cost[nid]
    if target is None:
        # the latest finish; on a tie the node furthest down the graph
        end = max(reversed(graph.order), key=lambda n: finish[n], default=None)
    else:
        end = target
    path = _path_to(end, via)
    left = [n for n in path if not progress.get(n, Progress()).done]
    cause = max(left, key=lambda n: cost[n], default=None) if left else None
    remaining = finish[end] if end is not None else 0.0
    unknown = tuple(n for n in graph.order
                    if not progress.get(n, Progress()).done and p90.get(n) is None)
    return Estimate(finish=now + timedelta(seconds=remaining), cause=cause,
                    remaining_s=remaining, unknown=unknown)


def _path_to(end: str | None, via: Mapping[str, str | None]) -> list[str]:
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return path[::-1]


def p90(durations: list[float]) -> float | None:
    """The 90th percentile (nearest rank) of ``durations``; None for no history."""
    if not durations:
        return None
    ordered = sorted(durations)
    rank = max(1, -(-9 * len(ordered) // 10))  # ceil(0.9 n)
    return ordered[rank - 1]
