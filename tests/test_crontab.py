"""`interlock import crontab`: crontab(5) files read as cron reads them, and what is written.

The fixtures under `tests/crontabs/` are real files (Debian's /etc/crontab, the cron.d files of
e2fsprogs, certbot and php) plus a user crontab and `odd-lines`, which holds on purpose a CRLF
line end, a byte that is not UTF-8 and no final newline (do not let an editor "fix" it).
Files are read as the CLI reads them: bytes decoded as UTF-8 with errors="replace".
"""

from __future__ import annotations

import calendar
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from interlock_cron.crontab import (
    CronJob,
    Crontab,
    Problem,
    parse_crontab,
    percent_split,
    written_command,
)
from interlock_cron.draft import host_name, wrapped_line, write_import

from interlock.config.systems import SYSTEM_NAME
from interlock.spec.loader import validate_paths
from interlock.spec.models import SLUG, Flow

CRONTABS = Path(__file__).resolve().parent / "crontabs"
VENV_BIN = Path(sys.executable).parent
DEBIAN_PATH = "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin"
FAST = settings(max_examples=200, deadline=None, database=None)


def read(name: str, **kwargs: Any) -> Crontab:
    path = CRONTABS / name
    return parse_crontab(path.read_bytes().decode("utf-8", errors="replace"), path=str(path),
                         **kwargs)


def summary(job: CronJob) -> tuple[Any, ...]:
    return (job.id, job.line, job.schedule, job.command, job.stdin, job.user, job.timezone)


def one_job(line: str, **kwargs: Any) -> CronJob:
    crontab = parse_crontab(line + "\n", **kwargs)
    assert crontab.problems == [], crontab.problems
    (job,) = crontab.jobs
    return job


def one_problem(text: str, **kwargs: Any) -> Problem:
    crontab = parse_crontab(text, **kwargs)
    assert crontab.jobs == []
    (problem,) = crontab.problems
    return problem


def assert_words(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --------------------------------------------------------------------------------------------
# real system crontabs


def test_debian_etc_crontab() -> None:
    crontab = read("debian-crontab")
    assert crontab.system and crontab.problems == []
    def anacron(period: str) -> str:
        return f"test -x /usr/sbin/anacron || {{ {run_parts(period)}; }}"

    def run_parts(period: str) -> str:
        return f"cd / && run-parts --report /etc/cron.{period}"

    assert [summary(j) for j in crontab.jobs] == [
        ("cron-hourly", 18, "17 * * * *", run_parts("hourly"), None, "root", "UTC"),
        ("cron-daily", 19, "25 6 * * *", anacron("daily"), None, "root", "UTC"),
        ("cron-weekly", 20, "47 6 * * 7", anacron("weekly"), None, "root", "UTC"),
        ("cron-monthly", 21, "52 6 1 * *", anacron("monthly"), None, "root", "UTC"),
    ]
    env = {"SHELL": "/bin/sh", "PATH": DEBIAN_PATH}
    assert all(job.env == env for job in crontab.jobs)
    assert crontab.env == env
    assert crontab.jobs[0].raw == "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly"


def test_a_file_under_etc_is_a_system_crontab_by_its_path() -> None:
    text = "0 1 * * * nobody-knows /usr/bin/x\n"
    assert parse_crontab(text, path="/etc/cron.d/x").jobs[0].user == "nobody-knows"
    assert parse_crontab(text, path="crontab").jobs[0].user is None


def test_cron_d_e2scrub_all() -> None:
    crontab = read("cron.d/e2scrub_all")
    guard = "test -e /run/systemd/system || SERVICE_MODE=1 "
    assert [summary(j) for j in crontab.jobs] == [
        ("e2scrub-all-cron", 1, "30 3 * * 0",
         guard + "/usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron", None, "root", "UTC"),
        ("e2scrub-all", 2, "10 3 * * *", guard + "/sbin/e2scrub_all -A -r", None, "root", "UTC"),
    ]
    assert crontab.problems == [] and crontab.env == {}
    assert all(job.env == {} for job in crontab.jobs)


def test_cron_d_certbot_keeps_backslashes_other_than_before_percent() -> None:
    crontab = read("cron.d/certbot")
    assert crontab.problems == []
    assert [summary(j) for j in crontab.jobs] == [
        ("certbot", 17, "0 */12 * * *",
         "test -x /usr/bin/certbot -a \\! -d /run/systemd/system && "
         "perl -e 'sleep int(rand(43200))' && certbot -q renew", None, "root", "UTC"),
    ]
    assert crontab.jobs[0].env == {"SHELL": "/bin/sh", "PATH": DEBIAN_PATH}


def test_cron_d_php_sessionclean() -> None:
    (job,) = read("cron.d/php").jobs
    assert summary(job) == (
        "sessionclean", 14, "09,39 * * * *",
        "[ -x /usr/lib/php/sessionclean ] && if [ ! -d /run/systemd/system ]; then "
        "/usr/lib/php/sessionclean; fi", None, "root", "UTC")


# --------------------------------------------------------------------------------------------
# a user crontab


def test_user_crontab() -> None:
    crontab = read("user-crontab")
    assert not crontab.system and crontab.problems == []
    paris = "Europe/Paris"
    assert [summary(j) for j in crontab.jobs] == [
        ("backup", 10, "30 2 * * *", "/usr/local/bin/backup.sh --incremental", None, None,
         paris),
        ("backup-2", 11, "30 3 * * sun", "/usr/local/bin/backup.sh --full", None, None, paris),
        ("rotate-logs", 13, "*/15 9-18 * * mon-fri", "cd /srv/app && ./rotate_logs.py --keep 7",
         None, None, paris),
        ("pg-dump", 15, "0 4 * * *", "pg_dump app > /var/backups/app-$(date +%F).sql", None,
         None, paris),
        ("mail", 17, "0 7 1 jan,jul *", 'mail -s "half-year report" finance@example.com',
         "Hello,\n\nthe report is attached.\n", None, paris),
        ("warm-cache", 18, "@reboot", "/srv/app/bin/warm-cache", None, None, paris),
        ("find", 19, "@daily", "find /tmp/app -mtime +7 -delete", None, None, paris),
        ("poll-queue", 20, "5-55/10 * * * *", "python3 /srv/app/jobs/poll_queue.py", None, None,
         paris),
        ("curl", 22, "0 */6 * * 1-5",
         "/usr/bin/curl -fsS https://hc.example.com/ping/abc >/dev/null", None, None, paris),
    ]
    first = {"MAILTO": "ops@example.com", "PATH": "/usr/local/bin:/usr/bin:/bin",
             "CRON_TZ": paris}
    assert all(job.env == first for job in crontab.jobs[:-1])
    assert crontab.jobs[-1].env == {**first, "MAILTO": ""}
    assert crontab.env == {**first, "MAILTO": ""}


def test_a_user_crontab_read_as_a_system_one_reports_the_missing_user_fields() -> None:
    crontab = read("user-crontab", system=True)
    # Where the program's name could be a user name, nothing tells them apart: hence the
    # conservative detection below, and --user-crontab / --system-crontab in the CLI.
    assert [(j.line, j.user) for j in crontab.jobs] == [
        (13, "cd"), (15, "pg_dump"), (17, "mail"), (19, "find"), (20, "python3")]
    assert [p.line for p in crontab.problems] == [10, 11, 18, 22]
    first = crontab.problems[0]
    assert first.column == 17
    assert_words(first.message, "`/usr/local/bin/backup.sh` is not a user name",
                 "system crontab", "root /usr/local/bin/backup.sh")


@pytest.mark.parametrize(("text", "system"), [
    ("0 1 * * * backup --full\n30 2 * * * report --daily\n", False),  # bare-word commands
    ("0 1 * * * root /usr/bin/a\n0 2 * * * www-data /usr/bin/b\n", True),
    ("@daily root /usr/bin/a\n", True),
    ("0 1 * * * root /usr/bin/a\n0 2 * * * /usr/bin/b\n0 3 * * * /usr/bin/c\n", False),
    ("0 1 * * * deploy /usr/bin/a\n", False),  # a plausible user, but no well-known account
    ("# nothing but comments\n", False),
])
def test_system_crontabs_are_detected_conservatively(text: str, system: bool) -> None:
    assert parse_crontab(text, path="some/file").system is system


# --------------------------------------------------------------------------------------------
# odd lines


def test_the_odd_lines_fixture_is_still_odd() -> None:
    data = (CRONTABS / "odd-lines").read_bytes()
    assert b"/usr/bin/crlf-ended\r\n" in data and b"caf\xe9" in data and b"\t\t" not in data
    assert not data.endswith(b"\n")


def test_odd_lines_jobs() -> None:
    crontab = read("odd-lines")
    assert not crontab.system
    assert [summary(j) for j in crontab.jobs] == [
        ("tabbed", 6, "0 1 * * *", "/usr/bin/tabbed --arg", None, None, "UTC"),
        ("indented", 7, "15 1 * * *", "/usr/bin/indented", None, None, "UTC"),
        ("crlf-ended", 8, "30 1 * * *", "/usr/bin/crlf-ended", None, None, "UTC"),
        ("echo", 9, "45 1 * * *", "echo \"not # a comment\" # the shell's comment", None, None,
         "UTC"),
        ("echo-2", 16, "0 6 * * *", "echo caf\ufffd", None, None, "UTC"),
        ("trailing-blanks", 18, "0 6 * * *", "/usr/bin/trailing-blanks", None, None, "UTC"),
        ("upper-names", 21, "0 7 * * MON-FRI", "/usr/bin/upper-names", None, None, "UTC"),
        ("leap-day", 22, "0 0 29 2 *", "/usr/bin/leap-day", None, None, "UTC"),
        ("feb31-or-monday", 24, "0 0 31 2 mon", "/usr/bin/feb31-or-monday", None, None, "UTC"),
        ("sunday-seven", 25, "0 8 * * 7", "/usr/bin/sunday-seven", None, None, "UTC"),
        ("steps", 26, "1-30/5 */2 * * *", "/usr/bin/steps", None, None, "UTC"),
        ("no-final-newline", 30, "0 9 * * *", "/usr/bin/no-final-newline", None, None, "UTC"),
    ]
    env = {"SHELL": "/bin/bash", "GREETING": "hello world", "FAREWELL": "see you  "}
    assert all(job.env == env for job in crontab.jobs)
    assert crontab.jobs[2].raw == "30 1 * * * /usr/bin/crlf-ended"


def test_odd_lines_problems() -> None:
    crontab = read("odd-lines")
    expected = [
        (10, 5, "day-of-month 30 never occurs in February (field 3 `30`, field 4 `2`): "
                "this job would never run"),
        (11, 1, "minute step 0 (field 1) never advances"),
        (12, 1, "minute 60 is out of range 0-59 (field 1)"),
        (13, 1, "unknown schedule `@sometimes`: use one of @reboot, @yearly"),
        (14, 8, "found 4 of the five time fields (minute hour day-of-month month day-of-week) "
                "and no command"),
        (15, 10, "no command after the five time fields"),
        (17, 3, "hour `\ufffd` (field 2) is not a number 0-23 (\ufffd stands for bytes that are "
                "not UTF-8 text)"),
        (20, 1, "unknown schedule `@DAILY` (cron matches macros case-sensitively: write "
                "`@daily`)"),
        (23, 5, "day-of-month 31 never occurs in April or June (field 3 `31`, field 4 `4,jun`)"),
        (27, 11, "the command starts with `*`, which cron refuses: is there a sixth time field"),
        (28, 1, "`MY-VAR` is not a valid environment variable name"),
        (29, 1, "minute range `5-1` goes backwards (field 1): cron does not wrap around; "
                "write `5-59,0-1` or `1-5`"),
    ]
    assert [(p.line, p.column) for p in crontab.problems] == [(e[0], e[1]) for e in expected]
    for problem, (_, _, words) in zip(crontab.problems, expected, strict=True):
        assert_words(problem.message, words)
    lines = (CRONTABS / "odd-lines").read_bytes().decode("utf-8", "replace").split("\n")
    assert all(p.raw == lines[p.line - 1] for p in crontab.problems)


def test_a_problem_prints_like_validate() -> None:
    problem = one_problem("60 * * * * x\n")
    assert str(problem.located("crontab")) == (
        "crontab:1:1: minute 60 is out of range 0-59 (field 1)")


# --------------------------------------------------------------------------------------------
# fields


@pytest.mark.parametrize(("line", "column", "words"), [
    ("0 24 * * * x", 3, ["hour 24 is out of range 0-23 (midnight is 0) (field 2)"]),
    ("0 0 0 * * x", 5, ["day-of-month 0 is out of range 1-31"]),
    ("0 0 32 * * x", 5, ["day-of-month 32 is out of range 1-31"]),
    ("0 0 * 13 * x", 7, ["month 13 is out of range 1-12 (field 4)"]),
    ("0 0 * 0 * x", 7, ["month 0 is out of range 1-12"]),
    ("0 0 * * 8 x", 9, ["day-of-week 8 is out of range 0-7 (Sunday is 0 or 7)"]),
    ("0,99999999999 0 * * * x", 1, ["minute 99999999999 is out of range 0-59",
                                    "(field 1 `0,99999999999`)"]),
    ("*/0 * * * * x", 1, ["minute step 0", "`*/5`"]),
    ("0 1-20/0 * * * x", 3, ["hour step 0"]),
    ("*/x * * * * x", 1, ["minute step `/x` is not a number"]),
    ("5/10 * * * * x", 1, ["a step goes with `*` or a range", "`5-59/10`", "`*/10`"]),
    ("0 22-2 * * * x", 3, ["hour range `22-2` goes backwards", "`22-23,0-2`"]),
    ("0 0 * dec-jan * x", 7, ["month range `dec-jan` goes backwards"]),
    ("0 0 * foo * x", 7, ["month `foo` (field 4) is not a number 1-12 or a name, jan-dec"]),
    ("0 0 * * monday x", 9, ["day-of-week `monday`", "first three letters only: `mon`"]),
    ("0 0 * * mon#1 x", 9, ["day-of-week `mon#1` (field 5) is not a number 0-7"]),
    ("0 0 L * * x", 5, ["day-of-month `L` (field 3) is not a number 1-31"]),
    ("0 0 ? * * x", 5, ["day-of-month `?`"]),
    ("jan * * * * x", 1, ["minute `jan` (field 1) is not a number 0-59"]),
    ("1,,2 * * * * x", 1, ["minute has an empty value (field 1 `1,,2`)"]),
    ("1- * * * * x", 1, ["minute has an empty value"]),
    ("0 5 * * /usr/bin/x", 9, ["day-of-week `/usr/bin/x` (field 5) looks like the start of "
                               "the command", "this one has 4"]),
    ("/usr/bin/x", 1, ["looks like the start of the command", "this one has 0"]),
    ("0 5 * *", 8, ["found 4 of the five time fields"]),
    ("@sometimes x", 1, ["unknown schedule `@sometimes`"]),
    ("@Daily x", 1, ["case-sensitively: write `@daily`"]),
    ("@daily", 7, ["no command after `@daily`"]),
    ("* * * * * * x", 11, ["the command starts with `*`"]),
    ("0 0 * * * %only stdin", 11, ["the command is empty", "standard input", "`\\%`"]),
])
def test_bad_fields_are_reported_with_field_and_column(line: str, column: int,
                                                       words: list[str]) -> None:
    problem = one_problem(line + "\n")
    assert (problem.line, problem.column, problem.raw) == (1, column, line)
    assert_words(problem.message, *words)


@pytest.mark.parametrize(("dom", "months", "never"), [
    ("30", "2", "February"), ("31", "2", "February"), ("30,31", "feb", "February"),
    ("31", "4", "April"), ("31", "6", "June"), ("31", "9", "September"), ("31", "11", "November"),
    ("31", "4,6,9,11", "April, June, September or November"),
])
def test_impossible_dates_are_reported(dom: str, months: str, never: str) -> None:
    problem = one_problem(f"0 0 {dom} {months} * x\n")
    assert problem.column == 5
    assert_words(problem.message, f"never occurs in {never} (field 3 `{dom}`, field 4 "
                                  f"`{months}`): this job would never run")


@pytest.mark.parametrize("schedule", [
    "0 0 29 2 *",        # leap years
    "0 0 31 1-12 *",     # some months have a 31st
    "0 0 30,31 2,3 *",   # March has them
    "0 0 30 2 mon",      # both day fields restricted: cron ORs them, Mondays still fire
    "0 0 * 2 *",
    "0 0 */30 2 *",      # `*/30` starts at the 1st
])
def test_possible_dates_are_accepted(schedule: str) -> None:
    assert one_job(f"{schedule} x").schedule == schedule


def test_a_star_step_weekday_does_not_make_an_impossible_date_possible() -> None:
    # cron ANDs the day fields when one starts with `*` (Vixie's DOW_STAR): never runs.
    assert_words(one_problem("0 0 30 2 */2 x\n").message, "never occurs in February")


def test_every_day_of_every_month_against_the_calendar() -> None:
    for month in range(1, 13):
        last = calendar.monthrange(2024, month)[1]  # a leap year
        for day in range(1, 32):
            crontab = parse_crontab(f"0 0 {day} {month} * x\n")
            assert bool(crontab.problems) is (day > last), (day, month)


def test_names_and_numbers() -> None:
    assert one_job("0 0 * JAN,jul * x").schedule == "0 0 * JAN,jul *"
    assert one_job("0 0 * * Mon-FRI x").schedule == "0 0 * * Mon-FRI"
    assert one_job("0 0 * * sun-7 x").schedule == "0 0 * * sun-7"
    assert one_job("00 05 01 01 00 x").schedule == "00 05 01 01 00"
    assert one_job("0-59/61 * * * * x").schedule == "0-59/61 * * * *"  # cron takes only 0


@pytest.mark.parametrize("macro", ["@reboot", "@yearly", "@annually", "@monthly", "@weekly",
                                   "@daily", "@midnight", "@hourly"])
def test_macros(macro: str) -> None:
    job = one_job(f"{macro}\t/usr/bin/x --y")
    assert (job.schedule, job.command, job.user) == (macro, "/usr/bin/x --y", None)
    job = one_job(f"{macro} root /usr/bin/x", system=True)
    assert (job.schedule, job.command, job.user) == (macro, "/usr/bin/x", "root")


def test_system_lines_without_user_or_command() -> None:
    assert_words(one_problem("0 1 * * *\n", system=True).message, "no user and no command")
    assert_words(one_problem("0 1 * * * root\n", system=True).message,
                 "no command after the user `root`")
    problem = one_problem("@daily /usr/bin/x\n", system=True)
    assert problem.column == 8
    assert_words(problem.message, "`/usr/bin/x` is not a user name")


# --------------------------------------------------------------------------------------------
# environment lines and time zones


def test_environment_lines() -> None:
    crontab = parse_crontab(
        "A=1\n"
        "  B = two words  \n"
        "C='  kept  '\n"
        'D = "x y"   \n'
        '"E"=quoted-name\n'
        "MAILTO=\"\"\n"
        "PATH=$PATH:/opt/bin\n"
        "F=a # not a comment\n"
        "A=2\n"
        "G==\n"
        "0 1 * * * x\n")
    assert crontab.problems == []
    assert crontab.jobs[0].env == {
        "A": "2", "B": "two words", "C": "  kept  ", "D": "x y", "E": "quoted-name",
        "MAILTO": "", "PATH": "$PATH:/opt/bin", "F": "a # not a comment", "G": "="}


@pytest.mark.parametrize(("line", "column", "words"), [
    ("MY-VAR=1", 1, ["`MY-VAR` is not a valid environment variable name"]),
    ("2X=1", 1, ["`2X` is not a valid"]),
    ('"A B"=1', 2, ["`A B` is not a valid"]),
    ("A='open", 3, ["opening quote ' is never closed"]),
    ('A="x" y', 6, ["text after the closing quote of the value (`y`)"]),
    ("CRON_TZ=Mars/Olympus", 9, ["CRON_TZ `Mars/Olympus` is not an IANA time zone name",
                                 "imported with timezone UTC"]),
])
def test_bad_environment_lines(line: str, column: int, words: list[str]) -> None:
    problem = one_problem(line + "\n")
    assert problem.column == column
    assert_words(problem.message, *words)


def test_a_bad_environment_line_is_skipped_and_the_rest_still_read() -> None:
    crontab = parse_crontab("A=1\nCRON_TZ=Nowhere\nB-C=2\n0 1 * * * x\n")
    assert [p.line for p in crontab.problems] == [2, 3]
    assert crontab.jobs[0].env == {"A": "1"} and crontab.jobs[0].timezone == "UTC"


def test_time_zones() -> None:
    crontab = parse_crontab(
        "0 1 * * * a\n"
        "TZ=:America/New_York\n"
        "0 1 * * * b\n"
        "CRON_TZ=Asia/Tokyo\n"
        "0 1 * * * c\n"
        "CRON_TZ=\n"
        "0 1 * * * d\n"
        "TZ=\n"
        "0 1 * * * e\n", default_timezone="Europe/Paris")
    assert [(j.id, j.timezone) for j in crontab.jobs] == [
        ("a", "Europe/Paris"), ("b", "America/New_York"), ("c", "Asia/Tokyo"),
        ("d", "America/New_York"), ("e", "Europe/Paris")]
    with pytest.raises(ValueError, match="default timezone 'Moon/Base' is not an IANA"):
        parse_crontab("", default_timezone="Moon/Base")


# --------------------------------------------------------------------------------------------
# commands, `%` and ids


@pytest.mark.parametrize(("written", "command", "stdin"), [
    ("echo hi", "echo hi", None),
    ("date +\\%F", "date +%F", None),
    ("mail -s x root%Hello%%bye%", "mail -s x root", "Hello\n\nbye\n"),
    ("cat%100\\%%done", "cat", "100%\ndone"),
    ("cat%", "cat", ""),
    ("printf '\\%s' a\\\\%in", "printf '%s' a\\\\", "in"),
    ("echo a\\b\\%c", "echo a\\b%c", None),
    ("cat%a\\b", "cat", "a\\b"),
])
def test_percent_in_commands(written: str, command: str, stdin: str | None) -> None:
    job = one_job(f"0 1 * * * {written}")
    assert (job.command, job.stdin) == (command, stdin)
    assert written_command(job) == written
    before, after = percent_split(written)
    assert before + after == written and after.startswith("%") is (stdin is not None)


@pytest.mark.parametrize(("command", "job_id"), [
    ("/usr/local/bin/backup.sh --full", "backup"),
    ("./rotate_logs.py", "rotate-logs"),
    ("FOO=1 BAR=2 /opt/x/Report.PY", "report"),
    ("cd /srv && make deploy", "make"),
    ("cd /srv; make", "make"),
    ("nice -n 19 ionice -c3 /usr/bin/updatedb", "updatedb"),
    ("env LANG=C /usr/bin/sort-files", "sort-files"),
    ("python3 /srv/jobs/poll_queue.py --fast", "poll-queue"),
    ("/usr/bin/php /var/www/nextcloud/cron.php", "cron"),
    ("bash -c 'echo hi'", "bash"),
    ("run-parts --report /etc/cron.daily", "cron-daily"),
    ("test -x /usr/bin/certbot && certbot renew", "certbot"),
    ("[ -x /usr/lib/php/sessionclean ] && /usr/lib/php/sessionclean", "sessionclean"),
    ("test -e /run/x || { cd / && run-parts /etc/cron.weekly; }", "cron-weekly"),
    ("2fa-sync --all", "job-2fa-sync"),
    ("___", "job"),
    ("{ }", "job"),
    ("true", "true"),
    ("Ünïcode-tool", "n-code-tool"),
])
def test_job_ids(command: str, job_id: str) -> None:
    assert one_job(f"0 1 * * * {command}").id == job_id


def test_job_ids_are_unique_in_file_order() -> None:
    crontab = parse_crontab("".join(f"0 {h} * * * {c}\n" for h, c in enumerate(
        ["backup", "backup", "backup-2", "/x/backup.sh", "backup-2"])))
    assert [j.id for j in crontab.jobs] == ["backup", "backup-2", "backup-2-2", "backup-3",
                                            "backup-2-3"]


def test_a_very_long_line() -> None:
    program = "p" * 5000
    line = f"0 1 * * * /opt/{program}.sh " + "x" * 200_000
    started = time.monotonic()
    job = one_job(line)
    assert time.monotonic() - started < 2
    assert job.id == "p" * 100 and re.fullmatch(SLUG, job.id)
    assert len(job.command) == len(line) - len("0 1 * * * ")


def test_blank_and_comment_lines_are_not_jobs() -> None:
    crontab = parse_crontab("\n   \n\t\n# 0 1 * * * disabled\n  #x\n\r\n")
    assert crontab.jobs == [] and crontab.problems == []


# --------------------------------------------------------------------------------------------
# properties


def element(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[str]:
    @st.composite
    def build(draw: st.DrawFn) -> str:
        def value(v: int) -> str:
            if v - low < len(names) and draw(st.booleans()):
                return draw(st.sampled_from([str.lower, str.upper, str.title]))(names[v - low])
            return str(v)
        kind = draw(st.sampled_from(["*", "*/", "n", "n-m", "n-m/"]))
        if kind == "*":
            return "*"
        if kind == "*/":
            return f"*/{draw(st.integers(1, high))}"
        first = draw(st.integers(low, high))
        if kind == "n":
            return value(first)
        text = f"{value(first)}-{value(draw(st.integers(first, high)))}"
        return text if kind == "n-m" else f"{text}/{draw(st.integers(1, high - low + 1))}"
    return build()


def field(low: int, high: int, names: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    return st.lists(element(low, high, names), min_size=1, max_size=3).map(",".join)


MONTHS = tuple(calendar.month_abbr[1:])
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
SCHEDULES = st.tuples(field(0, 59), field(0, 23), field(1, 28), field(1, 12, MONTHS),
                      field(0, 7, DAYS))
BLANKS = st.sampled_from([" ", "\t", "  ", " \t "])
COMMANDS = st.text(alphabet=st.sampled_from(list("ab /%\\'\"&;|$#*{}()<>=-.")), min_size=1,
                   max_size=40).filter(lambda c: c[0] not in " *%" and c == c.rstrip())


@FAST
@given(SCHEDULES, st.lists(BLANKS, min_size=5, max_size=5), COMMANDS)
def test_any_valid_schedule_parses_and_round_trips(fields: tuple[str, ...], blanks: list[str],
                                                   command: str) -> None:
    line = "".join(f + b for f, b in zip(fields, blanks, strict=True)) + command
    job = one_job(line)
    assert job.schedule == " ".join(fields)
    assert croniter.is_valid(job.schedule)  # what the spec loader and the cron monitor read
    again = one_job(f"{job.schedule} {written_command(job)}")
    assert (again.schedule, again.command, again.stdin) == (job.schedule, job.command, job.stdin)


@FAST
@given(COMMANDS, st.booleans())
def test_the_wrapped_line_runs_the_same_command_with_the_same_stdin(command: str,
                                                                     system: bool) -> None:
    user = "root " if system else ""
    job = one_job(f"0 1 * * * {user}{command}", system=system)
    wrapped = one_job(wrapped_line(job, system="cron/h"), system=system)
    assert (wrapped.schedule, wrapped.user, wrapped.stdin) == (job.schedule, job.user, job.stdin)
    assert shlex.split(wrapped.command) == [
        "interlock", "cron", "exec", "--system", "cron/h", "--job", job.id, "--",
        "/bin/sh", "-c", job.command]


@FAST
@given(st.text(max_size=300))
def test_parsing_never_raises_and_accounts_for_every_line(text: str) -> None:
    crontab = parse_crontab(text)
    lines = text.split("\n")
    for item in [*crontab.jobs, *crontab.problems]:
        assert item.raw == lines[item.line - 1].removesuffix("\r")
    assert all(re.fullmatch(SLUG, job.id) for job in crontab.jobs)
    assert len({job.id for job in crontab.jobs}) == len(crontab.jobs)


# --------------------------------------------------------------------------------------------
# the wrapped line, run for real


STUB = """#!/bin/sh
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift
exec "$@"
"""


def run_as_cron(line: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the job of crontab ``line`` as cron does: `%` read by cron, the rest by /bin/sh."""
    job = one_job(line)
    done = subprocess.run(["/bin/sh", "-c", job.command], input=(job.stdin or "").encode(),
                          capture_output=True, env=env, cwd="/tmp", timeout=120)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


EQUIVALENT = [
    "cd / && pwd",
    "test -x /nonexistent || { echo fallback; }",
    "printf '[\\%s]' \"it's\" a\\ b",
    "echo \"not # a comment\" # the shell's",
    "cat%line one%line two",
    "tr a-z A-Z%hello\\%world",
    "echo $((1+2)) >&2; exit 3",
    "for i in 1 2 3; do echo $i; done | wc -l",
    "date +\\%Y | grep -c .",
]


@pytest.mark.parametrize("command", EQUIVALENT)
def test_the_wrapped_line_behaves_like_the_original(tmp_path: Path, command: str) -> None:
    stub = tmp_path / "interlock"
    stub.write_text(STUB)
    stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    original = run_as_cron(f"0 1 * * * {command}", env)
    job = one_job(f"0 1 * * * {command}")
    assert run_as_cron(wrapped_line(job, system="cron/h"), env) == original


def test_the_wrapped_line_through_the_real_wrapper(tmp_path: Path) -> None:
    if not (VENV_BIN / "interlock").exists():
        pytest.skip("the `interlock` command is not installed next to this Python")
    spool = tmp_path / "spool"
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(tmp_path),
           "INTERLOCK_HOME": str(tmp_path), "INTERLOCK_CRON_SPOOL": str(spool),
           "INTERLOCK_API_URL": "http://127.0.0.1:9", "LOGNAME": "tester"}
    line = "0 1 * * * cd / && pwd && tr a-z A-Z; exit 3%hello\\%world"
    original = run_as_cron(line, env)
    assert original == (3, "/\nHELLO%WORLD", "")
    job = one_job(line)
    assert run_as_cron(wrapped_line(job, system="cron/h"), env) == original
    reports = [json.loads(p.read_text()) for p in spool.rglob("*.json")]
    assert any(r.get("job") == "pwd" and r.get("system") == "cron/h" for r in reports), reports


# --------------------------------------------------------------------------------------------
# write_import


def write(crontab: Crontab, tmp_path: Path, host: str = "app-01", **kwargs: Any) -> Any:
    return write_import(crontab, host=host, mappings_dir=tmp_path / "mappings",
                        flows_dir=tmp_path / "flows", **kwargs)


def test_write_import_of_a_user_crontab(tmp_path: Path) -> None:
    crontab = read("user-crontab")
    result = write(crontab, tmp_path)
    assert result.mapping_path == tmp_path / "mappings" / "cron-app-01.yaml"
    assert result.flow_path == tmp_path / "flows" / "cron-app-01.yaml"
    assert (result.jobs, result.problems) == (9, [])
    text = result.mapping_path.read_text(encoding="utf-8")
    header = text.split("\nsystem:")[0]
    assert_words(header, f"imported from {crontab.path}", " UTC by `interlock import crontab ",
                 f"{crontab.path} --host app-01`", "--force", "wrapped", "grace")
    doc = yaml.safe_load(text)
    assert (doc["system"], doc["source"]) == ("cron/app-01", crontab.path)
    assert list(doc["jobs"]) == [job.id for job in crontab.jobs]
    env = {"MAILTO": "ops@example.com", "PATH": "/usr/local/bin:/usr/bin:/bin",
           "CRON_TZ": "Europe/Paris"}
    assert doc["jobs"]["mail"] == {
        "schedule": "0 7 1 jan,jul *", "timezone": "Europe/Paris",
        "command": 'mail -s "half-year report" finance@example.com',
        "stdin": "Hello,\n\nthe report is attached.\n", "env": env, "line": 17, "grace": "5m",
        "wrapped": "0 7 1 jan,jul * interlock cron exec --system cron/app-01 --job mail -- "
                   "/bin/sh -c 'mail -s \"half-year report\" finance@example.com'"
                   "%Hello,%%the report is attached.%"}
    assert doc["jobs"]["warm-cache"] == {
        "schedule": "@reboot", "timezone": "Europe/Paris", "command": "/srv/app/bin/warm-cache",
        "env": env, "line": 18, "monitor": False,
        "wrapped": "@reboot interlock cron exec --system cron/app-01 --job warm-cache -- "
                   "/bin/sh -c /srv/app/bin/warm-cache"}
    assert doc["jobs"]["pg-dump"]["wrapped"].endswith("'pg_dump app > /var/backups/app-$(date "
                                                      "+\\%F).sql'")
    # the line to paste is shown verbatim, not YAML-escaped
    assert "\n      0 4 * * * interlock cron exec --system cron/app-01 --job pg-dump -- " in text
    assert "# Lines not imported" not in text


def test_write_import_of_a_system_crontab(tmp_path: Path) -> None:
    result = write(read("cron.d/e2scrub_all"), tmp_path, host="db01.example.com")
    assert result.mapping_path.name == "cron-db01-example-com.yaml"
    doc = yaml.safe_load(result.mapping_path.read_text(encoding="utf-8"))
    assert doc["system"] == "cron/db01-example-com"
    assert doc["jobs"]["e2scrub-all"] == {
        "schedule": "10 3 * * *", "timezone": "UTC",
        "command": "test -e /run/systemd/system || SERVICE_MODE=1 /sbin/e2scrub_all -A -r",
        "user": "root", "line": 2, "grace": "5m",
        "wrapped": "10 3 * * * root interlock cron exec --system cron/db01-example-com --job "
                   "e2scrub-all -- /bin/sh -c 'test -e /run/systemd/system || SERVICE_MODE=1 "
                   "/sbin/e2scrub_all -A -r'"}


def test_the_wrapped_line_uses_the_crontab_shell() -> None:
    job = one_job("SHELL=/bin/bash\n0 1 * * * echo {a,b}")
    assert wrapped_line(job, system="cron/h") == (
        "0 1 * * * interlock cron exec --system cron/h --job echo -- /bin/bash -c 'echo {a,b}'")


def test_problems_are_listed_at_the_end_of_the_mapping(tmp_path: Path) -> None:
    crontab = read("odd-lines")
    result = write(crontab, tmp_path, grace="90s")
    assert result.problems == crontab.problems and result.jobs == 12
    text = result.mapping_path.read_text(encoding="utf-8")
    footer = text[text.index("# Lines not imported"):]
    assert footer.startswith(f"# Lines not imported: fix them in {crontab.path}, then import "
                             "again with --force.\n")
    for problem in crontab.problems:
        assert f"# line {problem.line}: {problem.message}\n#     {problem.raw}\n" in footer
    doc = yaml.safe_load(text)
    assert set(doc) == {"system", "source", "jobs"}
    assert {job["grace"] for job in doc["jobs"].values()} == {"90s"}


def test_control_characters_in_comments_keep_the_mapping_loadable(tmp_path: Path) -> None:
    crontab = parse_crontab("0 1 * * * ok\n60 * * * * \x1b[31mred\u2028\x85 \x00\n",
                            path="weird\npath")
    result = write(crontab, tmp_path)
    text = result.mapping_path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert list(doc["jobs"]) == ["ok"] and doc["source"] == "weird\npath"
    assert "#     60 * * * * \\x1b[31mred\\u2028\\x85 \\x00\n" in text


def test_write_import_refuses_to_overwrite(tmp_path: Path) -> None:
    crontab = read("user-crontab")
    result = write(crontab, tmp_path)
    before = result.mapping_path.read_bytes(), result.flow_path.read_bytes()
    with pytest.raises(FileExistsError) as info:
        write(crontab, tmp_path)
    assert_words(str(info.value), str(result.mapping_path), "already exists", "--force")
    assert (result.mapping_path.read_bytes(), result.flow_path.read_bytes()) == before
    result.mapping_path.unlink()
    with pytest.raises(FileExistsError, match=re.escape(str(result.flow_path))):
        write(crontab, tmp_path)
    assert not result.mapping_path.exists()  # nothing written when one of the two exists
    again = write(read("odd-lines"), tmp_path, overwrite=True)
    assert "tabbed" in yaml.safe_load(again.flow_path.read_text(encoding="utf-8"))["nodes"]
    leftovers = [p.name for p in tmp_path.rglob(".*")]
    assert leftovers == []


def test_write_import_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no job to import; 1 line"):
        write(parse_crontab("60 * * * * x\n", path="c"), tmp_path)
    with pytest.raises(ValueError, match="grace 'soon': bad duration"):
        write(read("user-crontab"), tmp_path, grace="soon")
    with pytest.raises(ValueError, match="has no letter or digit"):
        write(read("user-crontab"), tmp_path, host="..")
    with pytest.raises(ValueError, match="different directories"):
        write_import(read("user-crontab"), host="h", mappings_dir=tmp_path, flows_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("host", "name"), [
    ("app-01", "app-01"), ("db01.example.com", "db01-example-com"), ("_x_", "x"),
    ("Web Server #2", "Web-Server-2"), ("é", None), ("h" * 300, "h" * 100),
])
def test_host_names(host: str, name: str | None) -> None:
    if name is None:
        with pytest.raises(ValueError):
            host_name(host)
        return
    assert host_name(host) == name
    assert re.fullmatch(SYSTEM_NAME, f"cron/{name}") and re.fullmatch(SLUG, f"cron-{name}")


def test_the_flow_draft(tmp_path: Path) -> None:
    crontab = read("debian-crontab")
    result = write(crontab, tmp_path, host="deb")
    text = result.flow_path.read_text(encoding="utf-8")
    assert text.startswith(f"# Draft flow from {crontab.path}: one node per job. Edit needs: "
                           "to chain them.\n")
    doc = yaml.safe_load(text)
    assert (doc["id"], doc["namespace"]) == ("cron-deb", "cron")
    assert doc["nodes"]["cron-daily"] == {
        "uses": "cron", "with": {"system": "cron/deb", "job": "cron-daily", "wait": "next"},
        "description": "25 6 * * * test -x /usr/sbin/anacron || { cd / && run-parts --report "
                       "/etc/cron.daily; } (line 19)"}
    assert list(doc["nodes"]) == [job.id for job in crontab.jobs]
    flow = Flow.model_validate(doc)
    assert all(node.uses == "cron" and not node.needs for node in flow.nodes.values())


def cron_adapter_or_skip() -> None:
    module = pytest.importorskip("interlock_cron")
    try:
        module.CronAdapter  # noqa: B018 - imported lazily
    except Exception as exc:  # whatever keeps the adapter from loading
        pytest.skip(f"`uses: cron` is not available yet: {exc!r}")


@pytest.mark.parametrize("name", ["debian-crontab", "cron.d/e2scrub_all", "cron.d/certbot",
                                  "cron.d/php", "user-crontab", "odd-lines"])
def test_the_flow_draft_passes_validate(tmp_path: Path, name: str) -> None:
    cron_adapter_or_skip()
    result = write(read(name), tmp_path, host="host.example.com")
    assert validate_paths([result.flow_path]) == []


def test_awkward_commands_still_make_a_valid_flow(tmp_path: Path) -> None:
    cron_adapter_or_skip()
    crontab = parse_crontab(
        "0 1 * * * docker ps --format '{{.Names}}'\n"   # looks like an expression
        "0 2 * * * true\n0 3 * * * null\n0 4 * * * yes\n0 5 * * * 123\n"  # YAML-ish ids
        "0 6 * * * echo \x07bell\n")
    result = write(crontab, tmp_path)
    assert validate_paths([result.flow_path]) == []
    nodes = yaml.safe_load(result.flow_path.read_text(encoding="utf-8"))["nodes"]
    assert list(nodes) == ["docker", "true", "null", "yes", "job-123", "echo"]


def test_no_temporary_file_is_left_when_a_write_fails(tmp_path: Path) -> None:
    (tmp_path / "flows" / "cron-app-01.yaml").mkdir(parents=True)  # cannot be replaced
    with pytest.raises(IsADirectoryError):
        write(read("user-crontab"), tmp_path, overwrite=True)
    assert [p.name for p in tmp_path.rglob(".*")] == []
