"""Which OS user a script or robot node runs as, decided when it is submitted.

The first that names one wins:

1. the node's system (`with: {system: script/payroll}`): its `run_as` in the systems file;
2. its namespace: the systems file's top-level `run_as:` mapping (`finance: payroll`
   covers `finance` and `finance.eu`; the nearest wins);
3. the worker's `INTERLOCK_RUN_AS`.

A worker started as root with none of these refuses to run the command: a flow author's
script would otherwise run as root. `INTERLOCK_RUN_AS=root` says root is meant. A worker
not started as root runs commands as itself, and can switch to no other user. The embedded
dispatcher (no broker: `interlock run FLOW` on one's own machine) runs them as whoever
started it, root included: that person is the flow's author, not a service.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from interlock.adapters import Rejected, UnknownSystem, load_systems, settings
from interlock_script.identity import Identity, UnknownUser

SYSTEM_KIND = "script"  # the systems a script or robot node may name
SETTING = "INTERLOCK_RUN_AS"
FLOW_SEPARATOR = "/"    # JobSpec.flow is `namespace/flow-id`
HOW_TO_SET = (f"set {SETTING} on the worker to an unprivileged user (`root` to allow root), or "
              "`run_as` on the node's system or namespace in the systems file (docs/deploy.md)")


@dataclass(frozen=True)
class Choice:
    """A user name and where it was configured (for error messages)."""

    user: str
    source: str


def choose(system: str | None, flow: str) -> Choice | None:
    """The configured `run_as` for a node naming ``system`` in flow ``flow``, if any."""
    systems = load_systems()
    if system:
        try:
            found = systems.get(system, kind=SYSTEM_KIND)
        except UnknownSystem as e:
            raise Rejected(str(e)) from None
        if found.run_as:
            return Choice(found.run_as, f"system {system} in {systems.source}")
    namespace = flow.split(FLOW_SEPARATOR, 1)[0]
    entry = systems.namespace_run_as(namespace) if namespace else None
    if entry is not None:
        key, user = entry
        return Choice(user, f"`run_as` of namespace {key} in {systems.source}")
    configured = settings().run_as
    return Choice(configured, SETTING) if configured else None


def resolve(system: str | None, flow: str) -> Identity | None:
    """The user to switch to, or None to run as the worker itself; Rejected when the
    node must not run (root by default, an unknown user, a switch a non-root cannot do)."""
    chosen = choose(system, flow)
    me = Identity.current()
    if chosen is None:
        if me.is_root and not settings().embedded:
            raise Rejected(f"refusing to run this command as root: the worker runs as root "
                           f"and no `run_as` applies to it; {HOW_TO_SET}")
        return None
    try:
        user = Identity.lookup(chosen.user)
    except UnknownUser:
        raise Rejected(f"run_as user {chosen.user!r} (from {chosen.source}) does not exist "
                       f"on host {socket.gethostname()}: create it (e.g. `useradd --system "
                       f"--user-group {chosen.user}`) or correct {chosen.source}") from None
    if user.uid == me.uid:
        return None  # already that user
    if not me.is_root:
        raise Rejected(f"cannot run as {user.name!r} (from {chosen.source}): this worker runs "
                       f"as {me.name} (uid {me.uid}), and only a worker started as root can "
                       "switch users")
    return user


def check_reachable(user: Identity, cwd: Path, attempts: Path) -> None:
    """Rejected unless ``user`` can reach ``cwd`` and the attempts directory (where its
    $INTERLOCK_OUTPUT lives): say which directory stops it."""
    for path, what, other in ((cwd, "cwd", "cwd"),
                              (attempts, "the attempts directory", "INTERLOCK_HOME")):
        blocked = user.blocked_at(path)
        if blocked is not None:
            raise Rejected(f"run_as user {user.name!r} cannot reach {what} {path}: "
                           f"{blocked} is closed to it ({_mode(blocked)}); let it search "
                           f"that directory (`chmod o+x`, or the user's own group) or "
                           f"choose another {other}")


def _mode(path: Path) -> str:
    info = path.stat()
    return f"mode {info.st_mode & 0o7777:04o}, owner uid {info.st_uid}, group {info.st_gid}"
