"""`sla:` on a flow or a node: how long it may take (`max_duration`) and the wall-clock time
it must be done by (`deadline`, in a timezone). What happens when one passes (LATE, at_risk)
is `interlock.deadlines`; this module only says what a valid `sla:` is."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from interlock.spec.fields import Duration, Strict, TimeZone

CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _check_clock_time(value: str) -> str:
    if not CLOCK_TIME.fullmatch(value):
        shown = repr(value) if len(value) <= 20 else repr(value[:17]) + "..."
        raise ValueError(f"bad deadline {shown}: write a wall-clock time HH:MM (00:00 to "
                         "23:59), e.g. '06:30'")
    return value


ClockTime = Annotated[str, AfterValidator(_check_clock_time)]


class Sla(Strict):
    """When a run (or a node) must be done; it is LATE after that, `at_risk` before it when
    the estimate from history says it will not make it (`docs/deadlines.md`)."""

    max_duration: Duration | None = Field(default=None, description=(
        "at most this long from the run's creation (a node: from its first attempt), "
        "e.g. 45m"))
    deadline: ClockTime | None = Field(default=None, description=(
        "done by this wall-clock time, HH:MM: the first such time at or after the scheduled "
        "tick (or the run's creation)"))
    timezone: TimeZone | None = Field(default=None, description=(
        "the deadline's IANA timezone; default: the flow's schedule timezone when it has "
        "exactly one `schedule:` trigger, else UTC"))

    @model_validator(mode="after")
    def _something_to_meet(self) -> Sla:
        if self.max_duration is None and self.deadline is None:
            raise ValueError("`sla:` needs `max_duration:` (e.g. 45m) or `deadline:` "
                             "(e.g. '06:30'), or both")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ValueError("`sla.max_duration` must be longer than 0s")
        return self
