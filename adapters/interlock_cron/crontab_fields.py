"""A crontab job line: its schedule (five time fields or a macro), its user and command."""

from __future__ import annotations

import re
from dataclasses import dataclass

from interlock.adapters import cron_macros
from interlock_cron.crontab_line import Bad, Word, first_percent, take

MACROS = cron_macros.CRONTAB_MACROS
FIELD_NAMES = "minute hour day-of-month month day-of-week"
USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?")

_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February 29: leap years

_DIGITS = re.compile(r"[0-9]+")
_COMMAND_LIKE = re.compile(r"^(?:/|\./|~|\$)[^ ]*[A-Za-z]|[.=;&|<>'\"()]")


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
class Entry:
    schedule: str
    user: str | None
    written: str  # the command as written: `%` and `\%` untouched


def read_entry(line: str, system: bool) -> Entry:
    head = take(line, 1)[0][0]
    if head.text.startswith("@"):
        rest = take(line, 1)[1]
        schedule, after = _macro(head), f"`{head.text}`"
    else:
        words, rest = take(line, 5)
        schedule, after = _schedule(words, len(line) + 1), "the five time fields"
    user = None
    if system:
        user = _user(rest, len(line) - len(rest) + 1, after)
        rest, after = take(rest, 1)[1], f"the user `{user}`"
    _check_command(rest, len(line) - len(rest) + 1, after)
    return Entry(schedule, user, rest)


def _macro(word: Word) -> str:
    if word.text in MACROS:
        return word.text
    case = (f" (cron matches macros case-sensitively: write `{word.text.lower()}`)"
            if word.text.lower() in MACROS else "")
    raise Bad(word.col, f"unknown schedule `{word.text}`{case}: use one of "
                         f"{', '.join(MACROS)}, or five time fields ({FIELD_NAMES})")


def _user(rest: str, column: int, after: str) -> str:
    words, command = take(rest, 1)
    if not words:
        raise Bad(column, f"no user and no command after {after}: a line of a system crontab "
                           "(/etc/crontab, /etc/cron.d/) reads `<schedule> <user> <command>`")
    user = words[0].text
    if user.startswith("*"):
        _check_command(user, column, after)
    if not USER_NAME.fullmatch(user):
        raise Bad(column, (
            f"`{user}` is not a user name, and a system crontab (/etc/crontab, /etc/cron.d/) "
            f"names the user to run as before the command: write e.g. `root {user}`"))
    return user


def _check_command(command: str, column: int, after: str) -> None:
    if not command:
        raise Bad(column, f"no command after {after}: add the command to run, or comment the "
                           "line out with `#`")
    if command.startswith("*"):
        raise Bad(column, (
            "the command starts with `*`, which cron refuses: is there a sixth time field "
            f"(seconds, or a year)? cron reads five: {FIELD_NAMES}"))
    if first_percent(command) == 0:
        raise Bad(column, (
            "the command is empty: everything after the first `%` is the job's standard "
            "input; write `\\%` for a `%` that is part of the command"))


def _schedule(words: list[Word], end_column: int) -> str:
    values = [_values(word, field, n)
              for n, (word, field) in enumerate(zip(words, _FIELDS, strict=False), start=1)]
    if len(words) < 5:
        raise Bad(end_column, (
            f"found {len(words)} of the five time fields ({FIELD_NAMES}) and no command: "
            "complete the schedule and add the command"))
    _check_days_exist(words, values)
    return " ".join(word.text for word in words)


def _values(word: Word, field: _Field, n: int) -> frozenset[int]:
    if _COMMAND_LIKE.search(word.text):
        raise Bad(word.col, (
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
            raise Bad(column, (
                f"{field.name} `{part}` {where}: a step goes with `*` or a range; write "
                f"`{first}-{field.high}/{step}`, or `*/{step}` to start at {field.low}"))
        if low > high:
            raise Bad(column, (
                f"{field.name} range `{base}` goes backwards {where}: cron does not wrap "
                f"around; write `{first}-{field.high},{field.low}-{last}` or `{last}-{first}`"))
    return range(low, high + 1, _step(step, field, where, column) if slash else 1)


def _value(text: str, field: _Field, where: str, column: int) -> int:
    if _DIGITS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        if len(digits) <= 6 and field.low <= int(digits) <= field.high:
            return int(digits)
        raise Bad(column, f"{field.name} {digits} is out of range "
                           f"{field.low}-{field.high}{field.hint} {where}")
    if text.lower() in field.names:
        return field.low + field.names.index(text.lower())
    if not text:
        raise Bad(column, f"{field.name} has an empty value {where}: write values like `1`, "
                           "`1-5`, `*/15`, separated by single commas")
    names = f" or a name, {field.names[0]}-{field.names[-1]}" if field.names else ""
    if field.names and text.isalpha() and text[:3].lower() in field.names:
        names += f" (the first three letters only: `{text[:3]}`)"
    if "\ufffd" in text:
        names += " (� stands for bytes that are not UTF-8 text)"
    raise Bad(column, f"{field.name} `{text}` {where} is not a number "
                       f"{field.low}-{field.high}{names}")


def _step(text: str, field: _Field, where: str, column: int) -> int:
    if not _DIGITS.fullmatch(text):
        raise Bad(column, f"{field.name} step `/{text}` is not a number {where}: write e.g. "
                           "`*/5`")
    digits = text.lstrip("0")
    if not digits:
        raise Bad(column, f"{field.name} step 0 {where} never advances and cron refuses it: "
                           "use a step of 1 or more, e.g. `*/5`")
    return int(digits) if len(digits) <= 6 else 1_000_000  # any step past the range is one


def _check_days_exist(words: list[Word], values: list[frozenset[int]]) -> None:
    """Cron ORs day-of-month and day-of-week when both are restricted (neither starts with
    `*`): the weekday still fires then. Otherwise a day no selected month has never comes."""
    dom, month, dow = words[2], words[3], words[4]
    if dom.text.startswith("*") or not dow.text.startswith("*"):
        return
    first_day, months = min(values[2]), sorted(values[3])
    if all(first_day > _MONTH_DAYS[m - 1] for m in months):
        days = _either([str(d) for d in sorted(values[2])])
        raise Bad(dom.col, (
            f"day-of-month {days} never occurs in {_either([_MONTH_NAMES[m - 1] for m in months])} "
            f"(field 3 `{dom.text}`, field 4 `{month.text}`): this job would never run; fix the "
            "day or the month"))


def _either(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
