"""Who a command runs as: an OS user looked up by name, and what it may touch.

A worker started as root runs each script or robot as the user its node's `run_as`
names (see :mod:`interlock_script.run_as` for where that comes from). The runner, still
root, hands the user exactly what the command needs of its attempt directory, then
starts it with ``Popen(user=, group=, extra_groups=[])``: the user's uid and primary
group, no supplementary groups, and ``HOME``/``USER``/``LOGNAME`` of that user.

What the user gets (everything else stays the worker's, mode 0600):

    <attempt>/            worker's, group = the user's group, 0710: reach known names only
    <attempt>/outputs     the user's, 0600: $INTERLOCK_OUTPUT
    <attempt>/script, variables.json ...   the user's (what submit wrote for the command)
    <attempt>/robot/ ...  directories the adapter made for the command: the user's, 0700

The user cannot list or create anything in the attempt directory, so it cannot swap a
file the worker reads or writes for a symlink. Standard library only: the runner uses it.
"""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock_script.layout import (
    CANCEL_FILE,
    CHILD_PID_FILE,
    LOCK_FILE,
    LOG_FILE,
    OUTPUTS_FILE,
    RESULT_FILE,
    RUNNER_ERR_FILE,
    RUNNER_PID_FILE,
    SPAWNED_FILE,
    SPEC_FILE,
)

ROOT_UID = 0
# The runner's own files: never handed to the command's user.
RUNNER_FILES = frozenset({LOCK_FILE, SPEC_FILE, SPAWNED_FILE, RUNNER_PID_FILE, RUNNER_ERR_FILE,
                          CHILD_PID_FILE, LOG_FILE, RESULT_FILE, CANCEL_FILE})
HIDDEN_PREFIX = "."        # the worker's temporary files (`.result.json.<pid>.tmp`)
ATTEMPT_DIR_MODE = 0o710   # the owner (worker) everything; the user's group: reach by name
OUTPUTS_MODE = 0o600
HANDED_DIR_MODE = 0o700
ACL_XATTR = "system.posix_acl_access"


class UnknownUser(OSError):
    """`run_as` names a user this host does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r} on this host")
        self.name = name


@dataclass(frozen=True)
class Identity:
    """An OS user a command may run as."""

    name: str
    uid: int
    gid: int
    home: str

    @classmethod
    def lookup(cls, name: str) -> Identity:
        """The user called ``name``; UnknownUser if there is none (names only, not uids)."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise UnknownUser(name) from None
        return cls._of(entry)

    @classmethod
    def current(cls) -> Identity:
        """The user this process runs as (its effective uid)."""
        uid = os.geteuid()
        try:
            return cls._of(pwd.getpwuid(uid))
        except KeyError:  # a uid without a passwd entry (some containers)
            return cls(name=str(uid), uid=uid, gid=os.getegid(), home="/")

    @classmethod
    def _of(cls, entry: pwd.struct_passwd) -> Identity:
        return cls(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)

    @property
    def is_root(self) -> bool:
        return self.uid == ROOT_UID

    def popen_kwargs(self) -> dict[str, Any]:
        """`subprocess.Popen` arguments that start the command as this user, with its
        primary group only (supplementary groups cleared)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def login_env(self, given: Mapping[str, str]) -> dict[str, str]:
        """HOME, USER and LOGNAME of this user, except those the node's `env:` sets."""
        login = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name}
        return {name: value for name, value in login.items() if name not in given}

    def blocked_at(self, path: Path) -> Path | None:
        """The first directory on the way to ``path`` (itself included) this user may not
        search, by its mode bits; None if the way is open. A directory with an ACL is
        taken as open (the kernel decides; the command will say if it cannot)."""
        for directory in (*reversed(path.parents), path):
            try:
                info = os.stat(directory)
            except FileNotFoundError:
                return None  # created later (by the worker); its parent was open
            if not self._may_search(info) and ACL_XATTR not in _xattrs(directory):
                return directory
        return None

    def _may_search(self, info: os.stat_result) -> bool:
        if info.st_uid == self.uid:
            return bool(info.st_mode & stat.S_IXUSR)
        if info.st_gid == self.gid:
            return bool(info.st_mode & stat.S_IXGRP)
        return bool(info.st_mode & stat.S_IXOTH)

    def hand_over(self, attempt: Path) -> None:
        """Give this user what its command needs of ``attempt`` (the table above). Run by
        the runner as root, before the command starts and while nobody else writes there."""
        os.chown(attempt, -1, self.gid, follow_symlinks=False)
        os.chmod(attempt, ATTEMPT_DIR_MODE)
        with os.scandir(attempt) as entries:
            for entry in entries:
                if entry.name in RUNNER_FILES or entry.name.startswith(HIDDEN_PREFIX):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    self._give(Path(entry.path), HANDED_DIR_MODE)
                elif entry.is_file(follow_symlinks=False):
                    mode = OUTPUTS_MODE if entry.name == OUTPUTS_FILE else None
                    self._give(Path(entry.path), mode)

    def _give(self, path: Path, mode: int | None) -> None:
        if mode is not None:  # first, while the worker owns it (no CAP_FOWNER needed)
            os.chmod(path, mode)  # not a symlink (checked), and only the worker writes here
        os.chown(path, self.uid, self.gid, follow_symlinks=False)


def _xattrs(path: Path) -> list[str]:
    try:
        return os.listxattr(path)
    except OSError:
        return []
