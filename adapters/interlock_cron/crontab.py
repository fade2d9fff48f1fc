"""crontab(5) files read the way cron reads them: jobs, their environment, located problems.

`parse_crontab` never raises on bad input. A line it cannot use becomes a `Problem` (line,
column, what is wrong and what to do), the line is skipped, and reading goes on.

What cron does (Vixie cron as shipped by Debian, and cronie), and so what this does:
- A line is blank, a comment (`#` as its first non-blank character: a `#` later in a line is
  part of the command), an environment line, or a job. Fields are separated by spaces or tabs.
- Environment lines are `NAME=value`, blanks allowed around `=`; a value in matching single or
  double quotes is unquoted (keeping its blanks); nothing is expanded (`PATH=$PATH:/x` sets
  that literal text). An assignment applies to the jobs below it.
- A job is five time fields (minute hour day-of-month month day-of-week) or one macro
  (`@reboot`, `@hourly`, `@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually`,
  matched case-sensitively), then, in a system crontab, the user to run as, then the command:
  the rest of the line.
- A field is a comma list of `*`, `N`, `N-M`, `*/S` or `N-M/S`; months and weekdays may be
  named by their first three letters in any case (`jan`, `Mon-Fri`); 0 and 7 are Sunday.
  A range does not wrap around (`5-1` is an error); a step needs `*` or a range.
- In the command, the first unescaped `%` ends the command and starts the job's standard
  input, in which every further unescaped `%` is a newline; `\\%` is a literal `%`.

Where this parser is kinder than cron, it says so here: CRLF line ends and trailing blanks are
dropped (cron would pass a `\\r` to the shell), and a last line without a final newline is read
(cron ignores it; `crontab -e` adds the newline). Lines are split on `\\n` only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.adapters import Problem as LocatedProblem
from interlock_cron.crontab_fields import FIELD_NAMES, MACROS, USER_NAME, Entry, read_entry
from interlock_cron.crontab_ids import program, slug, unique
from interlock_cron.crontab_line import Bad, first_percent, stdin_text, take, unescape

__all__ = ["FIELD_NAMES", "MACROS", "CronJob", "Crontab", "Problem", "parse_crontab",
           "percent_split", "written_command"]

# Accounts that run jobs in /etc/crontab and /etc/cron.d but are not also command names.
_SYSTEM_ACCOUNTS = frozenset({"root", "www-data", "nobody", "daemon", "munin", "nagios", "zabbix"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"""[ \t]*(?:"(?P<dq>[^"=]*)"|'(?P<sq>[^'=]*)'"""
                         r"""|(?P<bare>[^ \t="'][^ \t=]*))[ \t]*=[ \t]*(?P<value>.*)""")


@dataclass(frozen=True)
class CronJob:
    id: str               # stable slug, unique in the file (see `slug`)
    line: int             # 1-based line number in the source file
    schedule: str         # the five fields as written (single spaces), or the macro
    command: str          # before the first unescaped `%`, `\%` unescaped to `%`
    stdin: str | None     # after the first unescaped `%`, further unescaped `%` as newlines
    user: str | None      # the user field of a system crontab line, else None
    env: dict[str, str]   # the environment lines in effect at this line, later wins
    timezone: str         # CRON_TZ (else TZ) in effect if an IANA zone, else the default
    raw: str              # the line as written (without its line end)


@dataclass(frozen=True)
class Problem:
    """A line that was not imported: why, and what to do about it."""

    line: int
    column: int           # 1-based, the start of the bad field (best effort)
    message: str
    raw: str

    def located(self, path: str) -> LocatedProblem:
        """As Interlock's `Problem`, printed `path:line:col: message` like `interlock validate`."""
        return LocatedProblem(path, self.line, self.column, self.message)


@dataclass(frozen=True)
class Crontab:
    path: str
    jobs: list[CronJob]
    problems: list[Problem]
    env: dict[str, str]   # the environment at the end of the file
    system: bool = False  # read as a system crontab (a user field before each command)



def parse_crontab(text: str, *, path: str = "<crontab>", system: bool | None = None,
                  default_timezone: str = "UTC") -> Crontab:
    """The jobs and problems of crontab ``text``; ``path`` only names it.

    ``system``: True for `/etc/crontab` and `/etc/cron.d/*` files (a user field before the
    command), False for user crontabs, None to decide: system when ``path`` is under `/etc/`,
    or when more than half of the job lines have a sixth word that could be a user name with a
    command after it AND at least one of those words is a well-known system account (`root`,
    `www-data`, `nobody`, `daemon`...). The account test keeps a user crontab whose commands are
    bare words (`0 1 * * * backup --full`) from being read as a system one.
    ``default_timezone``: a job's timezone when no valid CRON_TZ or TZ is in effect.
    """
    if not _is_zone(default_timezone):
        raise ValueError(f"default timezone {default_timezone!r} is not an IANA time zone "
                         "name: use one such as UTC or Europe/Paris")
    lines = _lines(text)
    is_system = _looks_system(path, lines) if system is None else system
    reader = _Reader(is_system, default_timezone)
    for number, raw in enumerate(lines, start=1):
        reader.read(number, raw)
    return Crontab(path=path, jobs=reader.jobs, problems=reader.problems, env=dict(reader.env),
                   system=is_system)


def written_command(job: CronJob) -> str:
    """The command of ``job`` as written in the crontab, `%` and `\\%` untouched: what cron
    reads, so what a line that replaces the job's line must keep."""
    count = (1 if job.schedule.startswith("@") else 5) + (job.user is not None)
    return take(job.raw.rstrip(" \t"), count)[1]


def percent_split(written: str) -> tuple[str, str]:
    """``written`` cut before its first unescaped `%`: (command part, rest from the `%`, or
    ""), both as written."""
    cut = first_percent(written)
    return (written, "") if cut < 0 else (written[:cut], written[cut:])


class _Reader:
    """Reads a crontab line by line, keeping the environment in effect."""

    def __init__(self, system: bool, default_timezone: str):
        self.system = system
        self.default_timezone = default_timezone
        self.env: dict[str, str] = {}
        self.jobs: list[CronJob] = []
        self.problems: list[Problem] = []
        self.ids: set[str] = set()

    def read(self, number: int, raw: str) -> None:
        line = raw.rstrip(" \t")
        body = line.lstrip(" \t")
        if not body or body.startswith("#"):
            return
        try:
            assignment = _assignment(line)
            if assignment is None:
                self._add_job(number, raw, read_entry(line, self.system))
            else:
                self._set_env(raw, *assignment)
        except Bad as bad:
            self.problems.append(Problem(number, bad.column, bad.message, raw))

    def _set_env(self, raw: str, name: str, value: str) -> None:
        zone = value.removeprefix(":") if name == "TZ" else value
        if name in ("CRON_TZ", "TZ") and zone and not _is_zone(zone):
            raise Bad(raw.find("=") + 2, (
                f"{name} `{value}` is not an IANA time zone name: use one such as "
                f"Europe/Paris (the jobs below this line are imported with timezone "
                f"{self._timezone()})"))
        self.env[name] = value

    def _add_job(self, number: int, raw: str, entry: Entry) -> None:
        cut = first_percent(entry.written)
        command = unescape(entry.written if cut < 0 else entry.written[:cut])
        self.jobs.append(CronJob(
            id=unique(slug(program(command)), self.ids), line=number,
            schedule=entry.schedule, command=command,
            stdin=None if cut < 0 else stdin_text(entry.written[cut + 1:]), user=entry.user,
            env=dict(self.env), timezone=self._timezone(), raw=raw))

    def _timezone(self) -> str:
        zone = self.env.get("CRON_TZ") or self.env.get("TZ", "").removeprefix(":")
        return zone if zone and _is_zone(zone) else self.default_timezone


# --------------------------------------------------------------------------------------------
# lines, words and environment lines


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    return [line.removesuffix("\r") for line in lines]




def _assignment(line: str) -> tuple[str, str] | None:
    """(name, value) if ``line`` is an environment line, None if it is not one at all."""
    match = _ASSIGNMENT.fullmatch(line)
    if match is None:
        return None
    group = next(g for g in ("dq", "sq", "bare") if match[g] is not None)
    name = match[group]
    if not _ENV_NAME.fullmatch(name):
        raise Bad(match.start(group) + 1, (
            f"`{name}` is not a valid environment variable name: use letters, digits and `_`, "
            "not starting with a digit (a program could not read it by that name)"))
    return name, _unquote(match["value"], match.start("value") + 1)


def _unquote(value: str, column: int) -> str:
    if value[:1] not in ("'", '"'):
        return value
    end = value.find(value[0], 1)
    if end < 0:
        raise Bad(column, f"the value's opening quote {value[0]} is never closed: close it "
                           "at the end of the value, or remove it")
    if value[end + 1:].strip(" \t"):
        raise Bad(column + end + 1, (
            f"text after the closing quote of the value (`{value[end + 1:].strip()}`): cron "
            "reads neither an assignment nor a job here; put the whole value in the quotes"))
    return value[1:end]


def _looks_system(path: str, lines: list[str]) -> bool:
    if PurePosixPath(path).parts[:2] == ("/", "etc"):
        return True
    users = [_user_word(line) for line in lines if _is_job_line(line)]
    named = [user for user in users if user is not None]
    return 2 * len(named) > len(users) and any(user in _SYSTEM_ACCOUNTS for user in named)


def _is_job_line(line: str) -> bool:
    body = line.strip(" \t")
    return bool(body) and not body.startswith("#") and _ASSIGNMENT.fullmatch(line) is None


def _user_word(line: str) -> str | None:
    """The word where a system crontab has its user field, if it could be one."""
    words, _ = take(line, 7)
    at = 1 if words and words[0].text.startswith("@") else 5
    if len(words) > at + 1 and USER_NAME.fullmatch(words[at].text):
        return words[at].text
    return None


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True
