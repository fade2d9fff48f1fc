"""The legacy cron jobs Interlock knows: the `mappings/cron-<host>.yaml` files.

`interlock import crontab` writes one file per host; operators edit it (grace periods,
which jobs to monitor). The cron monitor (`interlock.cron.checks`), `uses: cron` nodes
and the API read it through `load_cron_jobs`, which re-reads a file only when it changes.

    system: cron/db1
    source: /etc/crontab
    jobs:
      backup:
        schedule: "30 2 * * *"
        timezone: Europe/Paris
        command: /usr/local/bin/backup.sh --full
        grace: 5m            # a run starting later than this after its time is LATE
        missed_after: 1h     # no run by then is MISSED (default: the next tick)
        monitor: true        # false: never LATE or MISSED (always false for @reboot)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter

from interlock.config import files
from interlock.config.cron_macros import five_fields
from interlock.config.durations import parse_duration
from interlock.config.mappings import mappings_dir
from interlock.errors import InterlockError, NotFound

# The kind of the systems the cron monitor watches (`cron/<host>`). The monitor is the core's
# own (this file, `interlock.cron`, `/api/v1/cron`), so the word is core vocabulary: the one
# place the core names a kind that is also an adapter's (`uses: cron`).
CRON_KIND = "cron"
FILE_GLOB = "cron-*.yaml"
DEFAULT_GRACE_S = 300.0


class CronJobsError(InterlockError):
    """A cron mapping file that cannot be used; the message names the file and the job."""


class UnknownCronJob(NotFound):
    pass


@dataclass(frozen=True)
class CronJob:
    system: str
    id: str
    schedule: str                 # five fields or a macro, as in the crontab
    timezone: str
    command: str
    source: str                   # the mapping file
    stdin: str | None = None
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    grace_s: float = DEFAULT_GRACE_S
    missed_after_s: float | None = None
    monitor: bool = True
    monitor_from: datetime | None = None  # ignore expected runs before this (e.g. install day)

    @property
    def cron(self) -> str | None:
        """Five-field form of the schedule; None for @reboot (no expected times)."""
        return five_fields(self.schedule)

    @property
    def monitored(self) -> bool:
        return self.monitor and self.cron is not None


def load_cron_jobs(directory: Path | None = None) -> dict[str, dict[str, CronJob]]:
    """Every known job, by system then job id."""
    found: dict[str, dict[str, CronJob]] = {}
    for path in sorted((directory or mappings_dir()).glob(FILE_GLOB)):
        for system, jobs in _load_file(path).items():
            if system in found:
                raise CronJobsError(f"{path}: system {system} is also defined in another "
                                    "cron-*.yaml file; keep one file per host")
            found[system] = jobs
    return found


def cron_system(host: str) -> str:
    """The system name of a cron host."""
    return f"{CRON_KIND}/{host}"


def get_job(system: str, job_id: str) -> CronJob:
    jobs = load_cron_jobs()
    if system not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise UnknownCronJob(f"no cron system {system} (known: {known}); import its crontab "
                             "with `interlock import crontab FILE --host NAME`")
    if job_id not in jobs[system]:
        known = ", ".join(sorted(jobs[system])) or "none"
        raise UnknownCronJob(f"no job `{job_id}` in {system} (its jobs: {known})")
    return jobs[system][job_id]


def _load_file(path: Path) -> dict[str, dict[str, CronJob]]:
    try:
        return files.cached_file(path, _parse_file)
    except OSError as exc:
        raise CronJobsError(f"{path}: cannot read: {exc}") from None


def _parse_file(path: Path) -> dict[str, dict[str, CronJob]]:
    try:
        doc = files.read_yaml(path)
    except yaml.YAMLError as exc:
        raise CronJobsError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("system"), str) \
            or not isinstance(doc.get("jobs") or {}, dict):
        raise CronJobsError(f"{path}: expected `system: cron/<host>` and a `jobs:` mapping")
    system = doc["system"]
    if not system.startswith(f"{CRON_KIND}/"):
        raise CronJobsError(f"{path}: system {system!r} must be named cron/<host>")
    jobs = {str(job_id): _job(path, system, str(job_id), spec)
            for job_id, spec in (doc.get("jobs") or {}).items()}
    return {system: jobs}


def _job(path: Path, system: str, job_id: str, spec: Any) -> CronJob:
    where = f"{path}: job `{job_id}`"
    if not isinstance(spec, dict) or not spec.get("schedule") or not spec.get("command"):
        raise CronJobsError(f"{where}: needs `schedule:` and `command:`")
    schedule = " ".join(str(spec["schedule"]).split())
    cron = five_fields(schedule)
    if cron is not None and not (len(cron.split()) == 5 and croniter.is_valid(cron)):
        raise CronJobsError(f"{where}: bad schedule {schedule!r}")
    timezone = str(spec.get("timezone") or "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronJobsError(f"{where}: unknown timezone {timezone!r}") from None
    try:
        grace = parse_duration(spec.get("grace", DEFAULT_GRACE_S))
        missed = spec.get("missed_after")
        missed_s = parse_duration(missed) if missed is not None else None
    except ValueError as exc:
        raise CronJobsError(f"{where}: {exc}") from None
    since = spec.get("monitor_from")
    if since is not None and not isinstance(since, datetime):
        raise CronJobsError(f"{where}: `monitor_from` must be a timestamp, e.g. "
                            "2026-11-24T00:00:00Z")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # YAML timestamps without an offset are UTC
    env = spec.get("env") or {}
    return CronJob(system=system, id=job_id, schedule=schedule, timezone=timezone,
                   command=str(spec["command"]), source=str(path), stdin=spec.get("stdin"),
                   user=spec.get("user"), env={str(k): str(v) for k, v in env.items()},
                   grace_s=grace, missed_after_s=missed_s, monitor=bool(spec.get("monitor", True)),
                   monitor_from=since)
