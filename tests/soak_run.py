"""The chaos soak, start to verdict (`bench/soak.py` is its command line, `tests/test_soak.py`
its short version): private Redis and PostgreSQL, 2 workers, 2 schedulers, 2 APIs, the load
of `tests/soak_load.py`, the faults of `tests/soak_faults.py`, the checks of
`tests/soak_check.py`."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine

from tests.serving import OWN
from tests.soak_check import Report, check, wait_quiet
from tests.soak_faults import Injector, Kind, mount_tmpfs, plan, unmount
from tests.soak_load import Client, Load, cron_files, flows, flush_cron_spool, spool_dir
from tests.soak_services import Fleet, PrivatePostgres, PrivateRedis
from tests.workers import kill_leftover_scripts

DEFAULT_KINDS = list(Kind)  # fill-disk is left out (and said so) where no tmpfs can be mounted


@dataclass(frozen=True)
class SoakConfig:
    minutes: float
    seed: int
    home: Path
    kinds: tuple[Kind, ...] = tuple(DEFAULT_KINDS)
    lease_s: float = 5.0
    quiet_within_s: float = 180.0


def run_soak(config: SoakConfig, log: Callable[[str], None] = print) -> Report:
    report = Report()
    duration = config.minutes * 60
    report.say(f"chaos soak: seed {config.seed}, {config.minutes:g} min, lease "
               f"{config.lease_s:g} s, 2 workers + 2 schedulers + 2 APIs, private Redis and "
               f"PostgreSQL; replay with --seed {config.seed} --minutes {config.minutes:g}")
    log(report.lines[0])
    with _system(config, log) as (fleet, redis, postgres, env, (disk, disk_why)):
        kinds = [k for k in config.kinds if k is not Kind.FILL_DISK or disk is not None]
        if len(kinds) < len(config.kinds):
            report.left_out[Kind.FILL_DISK.value] = disk_why
            report.say(f"fill-disk left out: {disk_why}")
        faults = plan(config.seed, duration, kinds, config.lease_s)
        report.planned_kinds = {f.kind.value for f in faults}
        log("fault plan:\n" + "\n".join(f"  {f.describe()}" for f in faults))
        client = Client(fleet.api_urls(), _token(env), random.Random(config.seed + 1))
        ledger = Path(env["INTERLOCK_HOME"]) / "ledger.txt"
        ledger.touch()
        for source in flows(ledger).values():
            client.until_ok("POST", "/api/v1/flows", json={"source": source})
        registered = datetime.now(UTC)
        load = Load(client, env, random.Random(config.seed + 2))
        injector = Injector(faults, fleet, redis, postgres, client, disk, log=log)
        t0 = time.monotonic()
        load.start()
        faulting = threading.Thread(target=injector.run, args=(t0,), daemon=True)
        faulting.start()
        faulting.join(max(0.0, duration - (time.monotonic() - t0)))
        injector.stopped.set()
        faulting.join()  # a fault under way is healed and measured first
        load.stop()
        log(f"[soak] load stopped after {time.monotonic() - t0:.0f} s, "
            f"{load.count} request(s) made")
        _settle(fleet, env, report, log)
        ended = datetime.now(UTC)
        engine = create_engine(env["INTERLOCK_DATABASE_URL"], pool_pre_ping=True)
        waited = wait_quiet(engine, config.quiet_within_s, log)
        report.say(f"quiescence reached {waited:.1f} s after the load and faults stopped")
        check(engine=engine, ledger=ledger, sent=load.sent, outcomes=injector.outcomes,
              ticks_window=(registered, ended), env=env, report=report)
        engine.dispose()
    return report


def _settle(fleet: Fleet, env: dict[str, str], report: Report,
            log: Callable[[str], None]) -> None:
    """Bring back what died of itself, stop the schedulers (so ticks end), send the cron
    spool."""
    died = [p.name for p in fleet.procs if not p.alive()]
    report.require(not died, f"processes that died without being killed: {died}")
    fleet.revive()
    for scheduler in fleet.of("scheduler"):
        scheduler.stop()
    flushed = flush_cron_spool(env, fleet.api_urls()[0])
    log(f"[soak] cron spool flushed{': ' + flushed if flushed else ''}")
    left = sorted(spool_dir(env).glob("*.json"))
    report.require(not left, f"{len(left)} cron report(s) still spooled after a flush")
    restarts = {p.name: p.generation - 1 for p in fleet.procs if p.generation > 1}
    report.say(f"process restarts by the injector: {restarts or 'none'}")
    gave_up = sum(p.log.read_text(errors="replace").count("Unrecoverable error")
                  for p in fleet.of("worker"))
    report.say(f"workers Celery gave up on (each started itself again, same pid): {gave_up}")


@contextmanager
def _system(config: SoakConfig, log: Callable[[str], None]
            ) -> Iterator[tuple[Fleet, PrivateRedis, PrivatePostgres, dict[str, str],
                                tuple[Path | None, str]]]:
    home = config.home
    home.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        disk = _attempts_disk(home, config, log, stack)  # before any process writes there
        redis = PrivateRedis(home / "redis")
        redis.start()
        stack.callback(redis.stop)
        postgres = PrivatePostgres()
        stack.callback(postgres.stop)
        postgres.start()
        env = _env(home, redis.url, postgres.url, config.lease_s)
        fleet = Fleet(env, home)
        for role in ("worker", "scheduler", "api"):
            fleet.add(role, 2)
        stack.callback(kill_leftover_scripts, home / "attempts")
        stack.callback(fleet.stop_all)
        fleet.start_all()
        log(f"[soak] up: redis :{redis.port}, postgres :{postgres.port}, "
            f"APIs {', '.join(fleet.api_urls())}, home {home}")
        yield fleet, redis, postgres, env, disk


def _attempts_disk(home: Path, config: SoakConfig, log: Callable[[str], None],
                   stack: ExitStack) -> tuple[Path | None, str]:
    """A small tmpfs over the attempts folder for the fill-disk fault, or None and why not
    (the kind is not asked for, or the mount failed: not root); `run_soak` then leaves the
    kind out of the plan and says so."""
    if Kind.FILL_DISK not in config.kinds:
        return None, "not asked for"
    attempts = home / "attempts"
    why = mount_tmpfs(attempts)
    if why is not None:
        said = (f"cannot mount a tmpfs over {attempts} ({why}); the fault needs root, "
                "which CI has")
        log(f"[soak] {said}")
        return None, said
    stack.callback(unmount, attempts)
    return attempts, ""


def _env(home: Path, redis_url: str, pg_url: str, lease_s: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OWN}
    env.update(INTERLOCK_HOME=str(home), INTERLOCK_DATABASE_URL=pg_url,
               INTERLOCK_BROKER_URL=redis_url, INTERLOCK_QUEUE="soak",
               INTERLOCK_LEASE_SECONDS=f"{lease_s:g}", INTERLOCK_RUN_AS="root",
               INTERLOCK_POLICIES=str(home / "policies"), INTERLOCK_CRON_CHECK_SECONDS="0",
               INTERLOCK_CRON_SPOOL=str(home / "spool"), PYTHONUNBUFFERED="1",
               **cron_files(home))
    return env


def _token(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "interlock", "tokens", "create", "--name",
                           "soak", "--role", "admin", "--namespace", "*", "--expires", "never"],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip()
