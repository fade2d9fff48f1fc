"""When a cron expression fires: its times in its own time zone (so they follow daylight
saving time), as UTC instants. Shared by the scheduler and the cron job monitor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import takewhile
from zoneinfo import ZoneInfo

from croniter import croniter

from interlock.config.cron_macros import five_fields


def ticks_after(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Every time ``cron`` (five fields or a time macro) fires strictly after ``after``, in
    order, without end."""
    itr = croniter(five_fields(cron) or cron, after.astimezone(ZoneInfo(timezone)))
    while True:
        yield itr.get_next(datetime).astimezone(UTC)


def ticks_between(cron: str, timezone: str, after: datetime,
                  until: datetime) -> Iterator[datetime]:
    """The times in (after, until]."""
    return takewhile(lambda tick: tick <= until, ticks_after(cron, timezone, after))
