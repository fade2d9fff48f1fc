"""The chaos soak's fault injector (`bench/soak.py`): a plan drawn from a seed (printed at the
start, the same for the same seed and length), carried out one fault at a time, each followed
by a probe run whose completion gives the fault's recovery time."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from tests.soak_load import NAMESPACE, Client
from tests.soak_services import Fleet, PrivatePostgres, PrivateRedis

WARM_UP_S = 8.0
GAP_S = (10.0, 18.0)         # between the end of one fault's recovery and the next fault
RESTART_PAUSE_S = (1.0, 5.0)  # a killed process is started again after this
RECOVERY_LIMIT_S = 120.0      # a probe not done by then: the fault is reported unrecovered
FILL_HOLD_S = (4.0, 8.0)      # how long the attempts disk stays full
MIN_SQUEEZE = 0.2             # first-round gaps never shrink below a fifth (2-3.6 s)


class Kind(StrEnum):
    KILL_WORKER = "kill-worker"
    KILL_SCHEDULER = "kill-scheduler"
    KILL_API = "kill-api"
    STOP_WORKER = "stop-worker"  # SIGSTOP for longer than the lease, then SIGCONT
    RESTART_REDIS = "restart-redis"
    RESTART_POSTGRES = "restart-postgres"
    FILL_DISK = "fill-disk"      # the attempts tmpfs filled to ENOSPC for a while


@dataclass(frozen=True)
class Fault:
    at_s: float     # planned offset from the start of the load
    kind: Kind
    target: int     # which worker/scheduler/API (1 or 2); unused for the servers
    hold_s: float   # the pause before a restart, or how long a stop/full disk lasts

    def describe(self) -> str:
        who = f" #{self.target}" if self.kind.value.endswith(("worker", "scheduler", "api")) \
            else ""
        return f"t+{self.at_s:6.1f}s {self.kind.value}{who} (hold {self.hold_s:.1f}s)"


def plan(seed: int, duration_s: float, kinds: list[Kind], lease_s: float) -> list[Fault]:
    """Every kind once (shuffled: the first round), then random kinds, spaced over
    `duration_s`. On a short run the first round's gaps shrink so that it fits; a 10-minute
    plan is the same as before that rule (its gaps are not scaled)."""
    rng = random.Random(seed)
    order = rng.sample(kinds, len(kinds))
    squeeze = _first_round_squeeze(duration_s, order, lease_s)
    faults, at = [], WARM_UP_S
    while at < duration_s - 5 or len(faults) < len(order):
        first_round = len(faults) < len(order)
        kind = order[len(faults)] if first_round else rng.choice(kinds)
        if kind is Kind.STOP_WORKER:
            hold = lease_s + rng.uniform(2.0, 5.0)
        elif kind is Kind.FILL_DISK:
            hold = rng.uniform(*FILL_HOLD_S)
        else:
            hold = rng.uniform(*RESTART_PAUSE_S)
        faults.append(Fault(round(at, 1), kind, rng.randint(1, 2), round(hold, 1)))
        at += hold + rng.uniform(*GAP_S) * (squeeze if first_round else 1.0)
    return faults


def _first_round_squeeze(duration_s: float, order: list[Kind], lease_s: float) -> float:
    """The factor on the first round's gaps that fits every kind into the run, at worst."""
    longest = {Kind.STOP_WORKER: lease_s + 5.0, Kind.FILL_DISK: FILL_HOLD_S[1]}
    holds = sum(longest.get(k, RESTART_PAUSE_S[1]) for k in order)
    room = duration_s - WARM_UP_S - 5 - holds
    return max(MIN_SQUEEZE, min(1.0, room / (len(order) * GAP_S[1])))


@dataclass
class Outcome:
    fault: Fault
    started: float            # wall clock (monotonic) when it was injected
    recovery_s: float | None  # fault -> a probe run succeeded; None: not within the limit
    note: str = ""


@dataclass
class Injector:
    faults: list[Fault]
    fleet: Fleet
    redis: PrivateRedis
    postgres: PrivatePostgres
    client: Client
    disk: Path | None  # the attempts tmpfs, when mounted
    log: Callable[[str], None] = print
    outcomes: list[Outcome] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def run(self, t0: float) -> None:
        """Carry out the plan; a fault whose time has passed (the previous recovery was
        slow) waits for that recovery: faults never overlap, so each recovery is its own.
        The first round (every kind once) is carried out even when the load's time is up:
        a soak that did not inject every kind proves less than it says."""
        first_round = len({f.kind for f in self.faults})
        for index, fault in enumerate(self.faults):
            delay = max(0.0, t0 + fault.at_s - time.monotonic())
            if index < first_round:
                time.sleep(delay)
            elif self.stopped.wait(delay):
                return
            self.outcomes.append(self._one(fault))

    def _one(self, fault: Fault) -> Outcome:
        started = time.monotonic()
        self.log(f"[fault] {fault.describe()}: injecting")
        heal = self._inject(fault)
        probe = _Probe(self.client, f"{fault.kind.value}@{started:.0f}", started)
        probe.start()
        time.sleep(fault.hold_s)
        note = heal()
        probe.join(RECOVERY_LIMIT_S)
        recovered = probe.recovery_s
        self.log(f"[fault] {fault.describe()}: "
                 + (f"recovered in {recovered:.2f}s" if recovered is not None
                    else "NOT recovered") + (f" ({note})" if note else ""))
        return Outcome(fault, started, recovered, note)

    def _inject(self, fault: Fault) -> Callable[[], str]:
        """Do the fault now; return what undoes it (run after `hold_s`)."""
        if fault.kind is Kind.RESTART_REDIS:
            self.redis.stop()
            return lambda: (self.redis.start(), "")[1]
        if fault.kind is Kind.RESTART_POSTGRES:
            self.postgres.down()  # `pg_ctl restart -m fast`, with `hold_s` between the two
            return lambda: (self.postgres.up(), "")[1]
        if fault.kind is Kind.FILL_DISK:
            return self._fill(fault)
        role = fault.kind.value.split("-", 1)[1]
        proc = self.fleet.of(role)[fault.target - 1]
        if fault.kind is Kind.STOP_WORKER:
            proc.signal(signal.SIGSTOP)
            return lambda: (proc.signal(signal.SIGCONT), "")[1]
        proc.kill()

        def restart() -> str:
            revived = self.fleet.revive()  # this one, and any that died of the fault
            extra = [n for n in revived if n != proc.name]
            return f"also restarted {', '.join(extra)}" if extra else ""
        return restart

    def _fill(self, fault: Fault) -> Callable[[], str]:
        if self.disk is None:  # run_soak leaves the kind out of the plan without a tmpfs
            raise RuntimeError("fill-disk planned without a tmpfs over the attempts folder")
        filler = self.disk / "soak-filler"
        with filler.open("wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:  # the fault must be the one it says it is
                    raise
        free = os.statvfs(self.disk).f_bavail
        return lambda: (filler.unlink(missing_ok=True), f"disk full ({free} blocks free)")[1]


class _Probe(threading.Thread):
    """Starts a probe run (one script node) and waits for it to succeed."""

    def __init__(self, client: Client, label: str, since: float):
        super().__init__(name=f"probe-{label}", daemon=True)
        self.client, self.label, self.since = client, label, since
        self.recovery_s: float | None = None

    def run(self) -> None:
        deadline = self.since + RECOVERY_LIMIT_S
        try:
            answer = self.client.until_ok(
                "POST", "/api/v1/runs", within=RECOVERY_LIMIT_S,
                json={"namespace": NAMESPACE, "flow_id": "probe",
                      "inputs": {"fault": self.label}},
                headers={"Idempotency-Key": f"probe-{self.label}"})
        except RuntimeError:
            return
        run_id = answer.json()["id"]
        while time.monotonic() < deadline:
            if self.client.run_state(run_id) == "succeeded":
                self.recovery_s = time.monotonic() - self.since
                return
            time.sleep(0.1)


def mount_tmpfs(where: Path, size: str = "256m") -> str | None:
    """A small tmpfs for the attempts folder; None, or why it could not be mounted."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0711", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


def unmount(where: Path) -> None:
    if os.path.ismount(where):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
