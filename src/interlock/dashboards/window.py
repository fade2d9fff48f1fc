"""The time window a dashboard covers: `[since, until)` on a timestamp column."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression

from interlock import clock

DEFAULT_SPAN = timedelta(hours=24)  # aggregates without `since` cover the last day
_EARLIEST = datetime.min.replace(tzinfo=UTC)


class WindowError(ValueError):
    """A window that cannot be used; ``fields`` names the query parameters at fault."""

    def __init__(self, fields: tuple[str, ...], message: str):
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True)
class Window:
    """Rows whose timestamp is at or after ``since`` and before ``until`` (None: open)."""

    since: datetime | None = None
    until: datetime | None = None

    def where(self, column: SQLColumnExpression[Any]) -> list[ColumnElement[bool]]:
        conditions = []
        if self.since is not None:
            conditions.append(column >= self.since)
        if self.until is not None:
            conditions.append(column < self.until)
        return conditions


def open_window(since: datetime | None, until: datetime | None) -> Window:
    """The window as given: either end may be open (the runs listing)."""
    return _checked(_utc(since, "since"), _utc(until, "until"))


def bounded_window(since: datetime | None, until: datetime | None,
                   span: timedelta = DEFAULT_SPAN) -> Window:
    """Both ends closed: ``until`` defaults to now, ``since`` to ``span`` before it."""
    end = _utc(until, "until") or clock.now()
    start = _utc(since, "since")
    if start is None:
        start = end - span if end - _EARLIEST > span else _EARLIEST
    return _checked(start, end)


def _checked(since: datetime | None, until: datetime | None) -> Window:
    if since is not None and until is not None and since > until:
        raise WindowError(("since", "until"), f"`since` ({since.isoformat()}) is after `until` "
                                              f"({until.isoformat()}); swap them")
    return Window(since, until)


def _utc(at: datetime | None, field: str) -> datetime | None:
    if at is None:
        return None
    if at.tzinfo is None:
        raise WindowError((field,), f"`{field}` ({at.isoformat()}) has no time zone; add one, "
                                    "e.g. Z or +00:00")
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise WindowError((field,), f"`{field}` ({at.isoformat()}) is out of range") from None
