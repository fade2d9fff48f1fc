"""Duration percentiles: `percentile_cont` in PostgreSQL, the same arithmetic in Python on SQLite.

:func:`distributions` is the one entry point. On PostgreSQL the database sorts and
interpolates; on SQLite (no ordered-set aggregates) only the two timestamps of the rows in
the window are fetched and the durations are sorted here. Both give the same floats on the
same data: PostgreSQL's `percentile_cont(q)` takes the rows at ``floor(q * (n - 1))`` and
``ceil(q * (n - 1))`` and returns ``lo + (q * (n - 1) - floor(...)) * (hi - lo)`` in double
precision, which is what :func:`percentile_cont` computes, and durations are exact
microseconds on both sides (PostgreSQL's `extract(epoch ...)` is a numeric).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, SQLColumnExpression, cast, extract, func, select
from sqlalchemy.orm import Session

QUANTILES = (0.5, 0.95, 0.99)

Key = tuple[Any, ...]
Column = SQLColumnExpression[Any]  # a column, an ORM attribute or an expression


@dataclass(frozen=True)
class Distribution:
    """How many durations there were, and the seconds at each asked quantile."""

    count: int
    quantiles: dict[float, float]


def distributions(session: Session, *, start: Column, end: Column, keys: Sequence[Column],
                  where: Sequence[ColumnElement[bool]],
                  quantiles: Sequence[float] = QUANTILES) -> dict[Key, Distribution]:
    """``end - start`` in seconds, per value of ``keys``, over the rows matching ``where``.

    Rows where either timestamp is NULL are left out; groups with no rows are absent.
    """
    where = [*where, start.is_not(None), end.is_not(None)]
    if session.get_bind().dialect.name == "postgresql":
        return _in_sql(session, start, end, keys, where, quantiles)
    return _in_python(session, start, end, keys, where, quantiles)


def _in_sql(session: Session, start: Column, end: Column, keys: Sequence[Column],
            where: Sequence[ColumnElement[bool]],
            quantiles: Sequence[float]) -> dict[Key, Distribution]:
    seconds = cast(extract("epoch", end - start), Float)
    aggregates = [func.percentile_cont(q).within_group(seconds) for q in quantiles]
    query = select(*keys, func.count(), *aggregates).where(*where).group_by(*keys)
    found: dict[Key, Distribution] = {}
    for row in session.execute(query):
        key, count, values = tuple(row[:len(keys)]), row[len(keys)], row[len(keys) + 1:]
        if count:
            found[key] = Distribution(count, {q: float(v) for q, v in zip(quantiles, values,
                                                                           strict=True)})
    return found


def _in_python(session: Session, start: Column, end: Column, keys: Sequence[Column],
               where: Sequence[ColumnElement[bool]],
               quantiles: Sequence[float]) -> dict[Key, Distribution]:
    durations: dict[Key, list[float]] = {}
    for row in session.execute(select(*keys, start, end).where(*where)):
        durations.setdefault(tuple(row[:-2]), []).append((row[-1] - row[-2]).total_seconds())
    found: dict[Key, Distribution] = {}
    for key, values in durations.items():
        values.sort()
        found[key] = Distribution(len(values), {q: percentile_cont(values, q) for q in quantiles})
    return found


def percentile_cont(ordered: Sequence[float], q: float) -> float:
    """PostgreSQL's `percentile_cont(q)` over ``ordered`` (sorted, not empty)."""
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])
