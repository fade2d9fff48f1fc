"""Is an attempt's runner still there? Read from its directory alone."""

from __future__ import annotations

import time
from enum import Enum

from interlock_script.layout import AttemptPaths
from interlock_script.procs import read_pid_file

# How long `submit` may have spawned a runner that has not yet written its pid file.
START_GRACE_S = 30.0


class RunnerStatus(Enum):
    STARTING = "starting"            # spawned, pid file not written yet
    RUNNING = "running"
    DEAD = "dead"                    # pid file written, process gone
    NEVER_STARTED = "never started"  # no pid file long after the spawn (or no spawn at all)

    @property
    def gone(self) -> bool:
        return self in (RunnerStatus.DEAD, RunnerStatus.NEVER_STARTED)


def runner_status(paths: AttemptPaths) -> RunnerStatus:
    record = read_pid_file(paths.runner_pid)
    if record is not None:
        return RunnerStatus.RUNNING if record.alive() else RunnerStatus.DEAD
    try:
        spawned_at = paths.spawned.stat().st_mtime
    except FileNotFoundError:
        return RunnerStatus.NEVER_STARTED
    if time.time() - spawned_at > START_GRACE_S:
        return RunnerStatus.NEVER_STARTED
    return RunnerStatus.STARTING
