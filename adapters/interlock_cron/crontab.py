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

import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from interlock.adapters import Problem as LocatedProblem

MACROS = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight",
          "@hourly")
FIELD_NAMES = "minute hour day-of-month month day-of-week"

# Accounts that run jobs in /etc/crontab and /etc/cron.d but are not also command names.
_SYSTEM_ACCOUNTS = frozenset({"root", "www-data", "nobody", "daemon", "munin", "nagios", "zabbix"})
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29: leap years

_WORD = re.compile(r"[^ \t]+")
_DIGITS = re.compile(r"[0-9]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")
_ASSIGNMENT = re.compile(r"""[ \t]*(?:"(?P<dq>[^"=]*)"|'(?P<sq>[^'=]*)'"""
                         r"""|(?P<bare>[^ \t="'][^ \t=]*))[ \t]*=[ \t]*(?P<value>.*)""")
_COMMAND_LIKE = re.compile(r"^(?:/|\./|~|\$)[^ ]*[A-Za-z]|[.=;&|<>'\"()]")


@dataclass(frozen=True)
class CronJob:
    id: str               # stable slug, unique in the file (see `_slug`)
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


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] is the value low + i
    hint: str = ""


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23, hint=" (midnight is 0)"),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, tuple(m[:3].lower() for m in _MONTH_NAMES)),
    _Field("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"),
           hint=" (Sunday is 0 or 7)"),
)


@dataclass(frozen=True)
class _Word:
    text: str
    col: int  # 1-based


@dataclass(frozen=True)
class _Entry:
    schedule: str
    user: str | None
    written: str  # the command as written: `%` and `\%` untouched


class _Bad(Exception):
    def __init__(self, column: int, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


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
    return _take(job.raw.rstrip(" \t"), count)[1]


def percent_split(written: str) -> tuple[str, str]:
    """``written`` cut before its first unescaped `%`: (command part, rest from the `%`, or
    ""), both as written."""
    cut = _first_percent(written)
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
                self._add_job(number, raw, _entry(line, self.system))
            else:
                self._set_env(raw, *assignment)
        except _Bad as bad:
            self.problems.append(Problem(number, bad.column, bad.message, raw))

    def _set_env(self, raw: str, name: str, value: str) -> None:
        zone = value.removeprefix(":") if name == "TZ" else value
        if name in ("CRON_TZ", "TZ") and zone and not _is_zone(zone):
            raise _Bad(raw.find("=") + 2, (
                f"{name} `{value}` is not an IANA time zone name: use one such as "
                f"Europe/Paris (the jobs below this line are imported with timezone "
                f"{self._timezone()})"))
        self.env[name] = value

    def _add_job(self, number: int, raw: str, entry: _Entry) -> None:
        cut = _first_percent(entry.written)
        command = _unescape(entry.written if cut < 0 else entry.written[:cut])
        self.jobs.append(CronJob(
            id=_unique(_slug(_program(command)), self.ids), line=number,
            schedule=entry.schedule, command=command,
            stdin=None if cut < 0 else _stdin(entry.written[cut + 1:]), user=entry.user,
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


def _take(line: str, count: int) -> tuple[list[_Word], str]:
    """The first ``count`` blank-separated words of ``line``, and the rest (blanks dropped)."""
    words: list[_Word] = []
    end = 0
    for match in _WORD.finditer(line):
        if len(words) == count:
            break
        words.append(_Word(match.group(), match.start() + 1))
        end = match.end()
    return words, line[end:].lstrip(" \t")


def _assignment(line: str) -> tuple[str, str] | None:
    """(name, value) if ``line`` is an environment line, None if it is not one at all."""
    match = _ASSIGNMENT.fullmatch(line)
    if match is None:
        return None
    group = next(g for g in ("dq", "sq", "bare") if match[g] is not None)
    name = match[group]
    if not _ENV_NAME.fullmatch(name):
        raise _Bad(match.start(group) + 1, (
            f"`{name}` is not a valid environment variable name: use letters, digits and `_`, "
            "not starting with a digit (a program could not read it by that name)"))
    return name, _unquote(match["value"], match.start("value") + 1)


def _unquote(value: str, column: int) -> str:
    if value[:1] not in ("'", '"'):
        return value
    end = value.find(value[0], 1)
    if end < 0:
        raise _Bad(column, f"the value's opening quote {value[0]} is never closed: close it "
                           "at the end of the value, or remove it")
    if value[end + 1:].strip(" \t"):
        raise _Bad(column + end + 1, (
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
    words, _ = _take(line, 7)
    at = 1 if words and words[0].text.startswith("@") else 5
    if len(words) > at + 1 and _USER_NAME.fullmatch(words[at].text):
        return words[at].text
    return None


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


# --------------------------------------------------------------------------------------------
# job lines


def _entry(line: str, system: bool) -> _Entry:
    head = _take(line, 1)[0][0]
    if head.text.startswith("@"):
        rest = _take(line, 1)[1]
        schedule, after = _macro(head), f"`{head.text}`"
    else:
        words, rest = _take(line, 5)
        schedule, after = _schedule(words, len(line) + 1), "the five time fields"
    user = None
    if system:
        user = _user(rest, len(line) - len(rest) + 1, after)
        rest, after = _take(rest, 1)[1], f"the user `{user}`"
    _check_command(rest, len(line) - len(rest) + 1, after)
    return _Entry(schedule, user, rest)


def _macro(word: _Word) -> str:
    if word.text in MACROS:
        return word.text
    case = (f" (cron matches macros case-sensitively: write `{word.text.lower()}`)"
            if word.text.lower() in MACROS else "")
    raise _Bad(word.col, f"unknown schedule `{word.text}`{case}: use one of "
                         f"{', '.join(MACROS)}, or five time fields ({FIELD_NAMES})")


def _user(rest: str, column: int, after: str) -> str:
    words, command = _take(rest, 1)
    if not words:
        raise _Bad(column, f"no user and no command after {after}: a line of a system crontab "
                           "(/etc/crontab, /etc/cron.d/) reads `<schedule> <user> <command>`")
    user = words[0].text
    if user.startswith("*"):
        _check_command(user, column, after)
    if not _USER_NAME.fullmatch(user):
        raise _Bad(column, (
            f"`{user}` is not a user name, and a system crontab (/etc/crontab, /etc/cron.d/) "
            f"names the user to run as before the command: write e.g. `root {user}`"))
    return user


def _check_command(command: str, column: int, after: str) -> None:
    if not command:
        raise _Bad(column, f"no command after {after}: add the command to run, or comment the "
                           "line out with `#`")
    if command.startswith("*"):
        raise _Bad(column, (
            "the command starts with `*`, which cron refuses: is there a sixth time field "
            f"(seconds, or a year)? cron reads five: {FIELD_NAMES}"))
    if _first_percent(command) == 0:
        raise _Bad(column, (
            "the command is empty: everything after the first `%` is the job's standard "
            "input; write `\\%` for a `%` that is part of the command"))


def _schedule(words: list[_Word], end_column: int) -> str:
    values = [_values(word, field, n)
              for n, (word, field) in enumerate(zip(words, _FIELDS, strict=False), start=1)]
    if len(words) < 5:
        raise _Bad(end_column, (
            f"found {len(words)} of the five time fields ({FIELD_NAMES}) and no command: "
            "complete the schedule and add the command"))
    _check_days_exist(words, values)
    return " ".join(word.text for word in words)


def _values(word: _Word, field: _Field, n: int) -> frozenset[int]:
    if _COMMAND_LIKE.search(word.text):
        raise _Bad(word.col, (
            f"{field.name} `{word.text}` (field {n}) looks like the start of the command: a "
            f"crontab line has five time fields ({FIELD_NAMES}) before the command, this one "
            f"has {n - 1}"))
    found: set[int] = set()
    for part in word.text.split(","):
        where = f"(field {n})" if part == word.text else f"(field {n} `{word.text}`)"
        found.update(_element(part, field, where, word.col))
    return frozenset(found)


def _element(part: str, field: _Field, where: str, column: int) -> range:
    base, slash, step = part.partition("/")
    if base == "*":
        low, high = field.low, field.high
    else:
        first, dash, last = base.partition("-")
        low = _value(first, field, where, column)
        high = _value(last, field, where, column) if dash else low
        if slash and not dash:
            raise _Bad(column, (
                f"{field.name} `{part}` {where}: a step goes with `*` or a range; write "
                f"`{first}-{field.high}/{step}`, or `*/{step}` to start at {field.low}"))
        if low > high:
            raise _Bad(column, (
                f"{field.name} range `{base}` goes backwards {where}: cron does not wrap "
                f"around; write `{first}-{field.high},{field.low}-{last}` or `{last}-{first}`"))
    return range(low, high + 1, _step(step, field, where, column) if slash else 1)


def _value(text: str, field: _Field, where: str, column: int) -> int:
    if _DIGITS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        if len(digits) <= 6 and field.low <= int(digits) <= field.high:
            return int(digits)
        raise _Bad(column, f"{field.name} {digits} is out of range "
                           f"{field.low}-{field.high}{field.hint} {where}")
    if text.lower() in field.names:
        return field.low + field.names.index(text.lower())
    if not text:
        raise _Bad(column, f"{field.name} has an empty value {where}: write values like `1`, "
                           "`1-5`, `*/15`, separated by single commas")
    names = f" or a name, {field.names[0]}-{field.names[-1]}" if field.names else ""
    if field.names and text.isalpha() and text[:3].lower() in field.names:
        names += f" (the first three letters only: `{text[:3]}`)"
    if "\ufffd" in text:
        names += " (� stands for bytes that are not UTF-8 text)"
    raise _Bad(column, f"{field.name} `{text}` {where} is not a number "
                       f"{field.low}-{field.high}{names}")


def _step(text: str, field: _Field, where: str, column: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise _Bad(column, f"{field.name} step `/{text}` is not a number {where}: write e.g. "
                           "`*/5`")
    digits = text.lstrip("0")
    if not digits:
        raise _Bad(column, f"{field.name} step 0 {where} never advances and cron refuses it: "
                           "use a step of 1 or more, e.g. `*/5`")
    return int(digits) if len(digits) <= 6 else 1_000_000  # any step past the range is one


def _check_days_exist(words: list[_Word], values: list[frozenset[int]]) -> None:
    """Cron ORs day-of-month and day-of-week when both are restricted (neither starts with
    `*`): the weekday still fires then. Otherwise a day no selected month has never comes."""
    dom, month, dow = words[2], words[3], words[4]
    if dom.text.startswith("*") or not dow.text.startswith("*"):
        return
    first_day, months = min(values[2]), sorted(values[3])
    if all(first_day > _MONTH_DAYS[m - 1] for m in months):
        days = _either([str(d) for d in sorted(values[2])])
        raise _Bad(dom.col, (
            f"day-of-month {days} never occurs in {_either([_MONTH_NAMES[m - 1] for m in months])} "
            f"(field 3 `{dom.text}`, field 4 `{month.text}`): this job would never run; fix the "
            "day or the month"))


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


# --------------------------------------------------------------------------------------------
# `%` in commands (cron's do_command)


def _first_percent(text: str) -> int:
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return i
    return -1


def _unescape(command: str) -> str:
    out: list[str] = []
    escaped = False
    for ch in command:
        if escaped and ch == "%":
            out[-1] = "%"
        else:
            out.append(ch)
        escaped = not escaped and ch == "\\"
    return "".join(out)


def _stdin(text: str) -> str:
    """Cron's reading of the text after the first `%`: `%` is a newline, `\\%` a `%`."""
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped and ch != "%":
            out.append("\\")
        if not escaped and ch == "%":
            ch = "\n"
        escaped = ch == "\\"
        if not escaped:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# job ids

_INTERPRETER = re.compile(r"(?:ba|da|k|z)?sh|python[0-9.]*|perl|ruby|php[0-9.]*|node(?:js)?")
_WRAPPERS = frozenset({"env", "nohup", "exec", "nice", "ionice", "time", "command"})
_ASSIGN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
_CONNECTORS = ("&&", "||", ";")


def _program(command: str) -> str:
    """The word naming what ``command`` runs: past `NAME=value`, `cd DIR &&`, `test ... ||`,
    `{`, `nice -n 5`...; `test -x PROG && ...` names PROG; `sh script.sh` names the script;
    `run-parts DIR` names DIR."""
    words = command.split()
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("{", "(", "!") or _ASSIGN_WORD.fullmatch(word):
            i += 1
        elif word in _WRAPPERS:
            i += 1
            while i < len(words) and (words[i].startswith("-") or words[i].isdigit()):
                i += 1
        elif word in ("cd", "test", "["):
            if word != "cd" and words[i + 1:i + 2] == ["-x"] and _connector(words, i) == "&&":
                return words[i + 2] if i + 2 < len(words) else ""
            i = _after_connector(words, i)
        else:
            return _named(words[i:])
    return ""


def _named(words: list[str]) -> str:
    name = os.path.basename(words[0])
    args = _arguments(words[1:])
    if name == "run-parts" and args:
        return os.path.basename(args[-1].rstrip("/")).replace(".", "-")
    if _INTERPRETER.fullmatch(name) and len(words) > 1 and not words[1].startswith("-"):
        return words[1]
    return words[0]


def _arguments(words: list[str]) -> list[str]:
    """The non-option words up to the end of the simple command they start."""
    args: list[str] = []
    for word in words:
        if word in _CONNECTORS or word in ("|", "}", ")"):
            break
        if not word.startswith("-") and word.rstrip(";)}"):
            args.append(word.rstrip(";)}"))
        if word.endswith(";"):
            break
    return args


def _connector(words: list[str], start: int) -> str:
    for word in words[start:]:
        if word in _CONNECTORS:
            return word
        if word.endswith(";"):
            return ";"
    return ""


def _after_connector(words: list[str], start: int) -> int:
    for i in range(start, len(words)):
        if words[i] in _CONNECTORS or words[i].endswith(";"):
            return i + 1
    return len(words)


def _slug(program: str) -> str:
    """`[a-z0-9-]` from the basename of ``program`` minus its extension; `job` if empty,
    `job-` before one that starts with a digit (ids start with a letter)."""
    name = os.path.basename(program.rstrip(";)}&|'\"/"))
    stem = os.path.splitext(name)[0] or name
    slug = re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")[:100].strip("-")
    if not slug:
        return "job"
    return slug if slug[0].isalpha() else f"job-{slug}"


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate
