"""Cron's schedule macros (`@daily`...), in one place: what each stands for in five fields.

Flow schedules (`interlock.spec`), the cron job mappings (`config.cron_jobs`), tick times
(`engine.ticks`) and the crontab importer (through the adapter SDK) all read them here.
"""

from __future__ import annotations

REBOOT = "@reboot"  # once when cron starts: no expected times, so never LATE or MISSED

# The time macros, as Vixie cron and cronie define them (matched case-sensitively).
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

# What a crontab line's schedule may be instead of five fields.
CRONTAB_MACROS = (REBOOT, *MACROS)


def five_fields(schedule: str) -> str | None:
    """``schedule`` in five fields: a macro expanded, None for @reboot, anything else as is."""
    return None if schedule == REBOOT else MACROS.get(schedule, schedule)
