"""`interlock import crontab`: a parsed crontab as a mapping file and an editable flow draft.

The mapping (`<mappings>/cron-<host>.yaml`) describes every job: schedule, timezone, command,
standard input, user, environment, source line, the lateness `grace`, and `wrapped`, the
crontab line to put in place of the original so that its runs are reported to Interlock.
Lines that could not be read are listed at its end, as comments, so none is lost silently.
The flow draft (`<flows>/cron-<host>.yaml`) has one `uses: cron` node per job, not chained.

The wrapped line runs `interlock cron exec --system cron/HOST --job ID -- SHELL -c 'COMMAND'`
followed by the `%` part as written: the wrapper runs SHELL (the job's, /bin/sh by default)
on the command, exactly as cron did, so `&&`, `||`, `;`, `|` and redirections stay inside the
job instead of applying to the wrapper. Cron still reads `%` and `\\%` in the line before the
shell does; quoting never puts a backslash next to a `%`, so the same `%` ends the command.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from interlock.adapters import clock, parse_duration
from interlock_cron.crontab import CronJob, Crontab, Problem, percent_split, written_command

WRAPPER = "interlock cron exec"
DEFAULT_SHELL = "/bin/sh"  # what cron runs a command with when the crontab sets no SHELL
_RAW_SHOWN = 300  # characters of a bad line quoted in the mapping's comments


@dataclass(frozen=True)
class ImportResult:
    mapping_path: Path
    flow_path: Path
    jobs: int
    problems: list[Problem]


def write_import(crontab: Crontab, *, host: str, mappings_dir: Path, flows_dir: Path,
                 grace: str = "5m", overwrite: bool = False) -> ImportResult:
    """Write `cron-<host>.yaml` into ``mappings_dir`` and into ``flows_dir``.

    Raises FileExistsError, before writing anything, when either file exists and not
    ``overwrite``; ValueError for a bad ``grace`` or ``host``, or a crontab with no job.
    Each file is written whole or not at all (a temporary file, then a rename).
    """
    name = host_name(host)
    try:
        parse_duration(grace)
    except ValueError as exc:
        raise ValueError(f"grace {grace!r}: {exc}") from None
    if not crontab.jobs:
        unread = f"; {len(crontab.problems)} line(s) could not be read" if crontab.problems else ""
        raise ValueError(f"{crontab.path}: no job to import{unread}")
    mapping_path = Path(mappings_dir) / f"cron-{name}.yaml"
    flow_path = Path(flows_dir) / f"cron-{name}.yaml"
    if mapping_path.resolve() == flow_path.resolve():
        raise ValueError(f"the mapping and the flow draft would both be {mapping_path}: use "
                         "different directories for mappings and flows")
    if not overwrite:
        for path in (mapping_path, flow_path):
            if path.exists():
                raise FileExistsError(_exists(path))
    now = clock.now()
    _write(mapping_path, render_mapping(crontab, host=name, grace=grace, now=now), overwrite)
    _write(flow_path, render_flow(crontab, host=name, mapping_path=mapping_path), overwrite)
    return ImportResult(mapping_path, flow_path, len(crontab.jobs), list(crontab.problems))


def host_name(host: str) -> str:
    """``host`` as it appears in file names, the flow id and the system `cron/<host>`:
    runs of characters other than letters, digits, `_` and `-` become `-`; it starts and
    ends with a letter or digit (`db01.example.com` -> `db01-example-com`)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", host).strip("-_")[:100].strip("-_")
    if not name:
        raise ValueError(f"host name {host!r} has no letter or digit: pass --host NAME")
    return name


def wrapped_line(job: CronJob, *, system: str) -> str:
    """The crontab line that runs ``job`` as before, through `interlock cron exec`."""
    command, stdin = percent_split(written_command(job))
    user = "" if job.user is None else f"{job.user} "
    shell = shlex.quote(job.env.get("SHELL") or DEFAULT_SHELL)
    return (f"{job.schedule} {user}{WRAPPER} --system {system} --job {job.id} -- "
            f"{shell} -c {shlex.quote(command)}{stdin}")


# --------------------------------------------------------------------------------------------
# the mapping


def mapping_document(crontab: Crontab, *, host: str, grace: str) -> dict[str, Any]:
    return {"system": f"cron/{host}", "source": crontab.path,
            "jobs": {job.id: _job_entry(job, f"cron/{host}", grace) for job in crontab.jobs}}


def render_mapping(crontab: Crontab, *, host: str, grace: str, now: datetime) -> str:
    return (_mapping_header(crontab, host, now)
            + _dump(mapping_document(crontab, host=host, grace=grace))
            + _problems_footer(crontab))


def _job_entry(job: CronJob, system: str, grace: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"schedule": _Quoted(job.schedule), "timezone": job.timezone,
                             "command": _Quoted(job.command)}
    if job.stdin is not None:
        entry["stdin"] = job.stdin
    if job.user is not None:
        entry["user"] = job.user
    if job.env:
        entry["env"] = _Inline(job.env)
    entry["line"] = job.line
    if job.schedule == "@reboot":
        entry["monitor"] = False  # runs once per boot: there is no "late"
    else:
        entry["grace"] = grace
    entry["wrapped"] = _Verbatim(wrapped_line(job, system=system))
    return entry


def _mapping_header(crontab: Crontab, host: str, now: datetime) -> str:
    command = f"interlock import crontab {shlex.quote(crontab.path)} --host {host}"
    return _comment_lines([
        f"The cron jobs of {host}, imported from {crontab.path} on "
        f"{now:%Y-%m-%d %H:%M} UTC by `{command}`.",
        "To re-import, run that again with --force: this file is rewritten, so keep hand "
        "edits in flows, not here.",
        "",
        "Per job: `schedule` and `timezone` say when cron starts it; Interlock's cron monitor "
        "marks a run LATE when it has not started `grace` after that (`monitor: false`: not "
        "watched, as for @reboot).",
        "`wrapped` is the line to put in the crontab in place of the original one (at `line`): "
        "the same schedule, user, command and standard input, run through "
        f"`{WRAPPER}` so that each run is reported to Interlock.",
    ]) + "\n"


def _problems_footer(crontab: Crontab) -> str:
    if not crontab.problems:
        return ""
    lines = [f"Lines not imported: fix them in {crontab.path}, then import again with --force."]
    for problem in crontab.problems:
        raw = problem.raw if len(problem.raw) <= _RAW_SHOWN else problem.raw[:_RAW_SHOWN] + "…"
        lines += [f"line {problem.line}: {problem.message}", f"    {raw}"]
    return "\n" + _comment_lines(lines)


def _comment_lines(lines: list[str]) -> str:
    """YAML comments; characters YAML refuses or reads as line breaks are escaped."""
    return "".join(f"# {_printable(line)}".rstrip() + "\n" for line in lines)


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\t" else ascii(ch)[1:-1] for ch in text)


# --------------------------------------------------------------------------------------------
# the flow draft


def flow_document(crontab: Crontab, *, host: str) -> dict[str, Any]:
    return {
        "id": f"cron-{host}",
        "namespace": "cron",
        "description": f"The cron jobs of {host} ({crontab.path}), one node per job.",
        "nodes": {job.id: {"uses": "cron",
                           "with": _Inline({"system": f"cron/{host}", "job": job.id,
                                            "wait": "next"}),
                           "description": f"{job.schedule} {job.command} (line {job.line})"}
                  for job in crontab.jobs},
    }


def render_flow(crontab: Crontab, *, host: str, mapping_path: Path) -> str:
    header = _comment_lines([
        f"Draft flow from {crontab.path}: one node per job. Edit needs: to chain them.",
        f"The jobs are described in {mapping_path}; each node waits for the job's next run.",
    ])
    return header + _dump(flow_document(crontab, host=host))


# --------------------------------------------------------------------------------------------
# YAML and files


class _Quoted(str):
    """Written in single quotes when YAML allows it: `*`, `%` and `\\` then read as written."""


class _Verbatim(str):
    """Written as a literal block (`|-`): the next line is the text exactly, to copy as is."""


class _Inline(dict[str, str]):
    """Written on one line: `{a: x, b: y}`."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(_Quoted, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", str(value), style="'"))
_Dumper.add_representer(_Verbatim, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", str(value), style="|"))
_Dumper.add_representer(_Inline, lambda dumper, value: dumper.represent_mapping(
    "tag:yaml.org,2002:map", dict(value), flow_style=True))


def _dump(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=sys.maxsize)


def _exists(path: Path) -> str:
    return (f"{path} already exists: pass --force to overwrite it (edits made to it since it "
            "was imported would be lost)")


def _write(path: Path, text: str, overwrite: bool) -> None:
    """All of ``text`` at ``path`` or nothing; without ``overwrite``, never replaces a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _link_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # fails if ``path`` exists, even one created a moment ago
    except FileExistsError:
        raise FileExistsError(_exists(path)) from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(_exists(path)) from None
        os.replace(tmp, path)
