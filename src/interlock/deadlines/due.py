"""When a run or a node is due, from its `sla:` (pure: no store, no clock).

`max_duration` counts from the run's creation (a node: its first attempt's); `deadline` is
the first HH:MM in the timezone at or after the run's anchor, the scheduled tick when a
`schedule:` trigger started it, else its creation. With both, the earlier one.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from interlock.spec.models import Flow
from interlock.spec.sla import Sla

SCHEDULE_TRIGGER = "schedule"  # `run.trigger.type` of a scheduled run (triggers.schedule)


def zone_of(flow: Flow, sla: Sla) -> str:
    """The deadline's timezone: its own, else the flow's one schedule's, else UTC."""
    if sla.timezone:
        return sla.timezone
    schedules = [t.schedule for t in flow.triggers if t.schedule is not None]
    return schedules[0].timezone if len(schedules) == 1 else "UTC"


def anchor_of(trigger: dict[str, Any] | None, created_at: datetime) -> datetime:
    """The scheduled tick a run was started for, else its creation."""
    trigger = trigger or {}
    if trigger.get("type") == SCHEDULE_TRIGGER and isinstance(trigger.get("tick"), str):
        try:
            tick = datetime.fromisoformat(trigger["tick"])
        except ValueError:
            return created_at
        return tick if tick.tzinfo else tick.replace(tzinfo=UTC)
    return created_at


def next_clock_time(hhmm: str, zone: str, after: datetime) -> datetime:
    """The first ``hhmm`` wall-clock time in ``zone`` at or after ``after``, in UTC."""
    tz = ZoneInfo(zone)
    hour, minute = (int(part) for part in hhmm.split(":"))
    local = after.astimezone(tz)
    for days in range(3):  # today, else tomorrow (two, should a DST jump eat the time)
        day = local.date() + timedelta(days=days)
        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)
        if candidate >= after:
            return candidate
    raise AssertionError("unreachable: a clock time comes within two days")


def due_at(flow: Flow, sla: Sla, *, started: datetime | None,
           anchor: datetime) -> datetime | None:
    """The due instant; None when `max_duration` alone counts from a start not known yet."""
    dues: list[datetime] = []
    if sla.max_duration is not None:
        if started is None and sla.deadline is None:
            return None
        if started is not None:
            dues.append(started + timedelta(seconds=sla.max_duration))
    if sla.deadline is not None:
        dues.append(next_clock_time(sla.deadline, zone_of(flow, sla), anchor))
    return min(dues)
