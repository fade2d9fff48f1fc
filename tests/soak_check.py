"""The chaos soak's verdict (`bench/soak.py`): once the system is quiet, what the store and
the ledger hold is compared with what the load asked for. Each invariant that fails is one
line in `Report.failures`; the soak exits non-zero when there is any."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from interlock.states import NODE_TERMINAL, RUN_TERMINAL, NodeState, RunState
from interlock.store.tables import Attempt, ExternalRun, Outbox, Run
from tests.soak_faults import Outcome
from tests.soak_load import CRON_JOB, CRON_SYSTEM, Sent

TERMINAL = {s.value for s in RUN_TERMINAL}
TERMINAL_NODE = {s.value for s in NODE_TERMINAL}


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    planned_kinds: set[str] = field(default_factory=set)    # the kinds of fault in the plan
    left_out: dict[str, str] = field(default_factory=dict)   # kind -> why it could not be
    injected: Counter[str] = field(default_factory=Counter)  # kind -> faults carried out
    recovered: Counter[str] = field(default_factory=Counter)  # kind -> followed by a probe

    def say(self, line: str) -> None:
        self.lines.append(line)

    def require(self, ok: bool, failure: str) -> None:
        if not ok:
            self.failures.append(failure)

    @property
    def ok(self) -> bool:
        return not self.failures

    def text(self) -> str:
        verdict = ["RESULT: ok, every invariant holds"] if self.ok else \
            ["RESULT: FAILED", *(f"  - {f}" for f in self.failures)]
        return "\n".join([*self.lines, *verdict])


def wait_quiet(engine: Engine, within: float, log: Callable[[str], None]) -> float:
    """Wait until every run has finished and no work is owed; returns the seconds waited."""
    began = time.monotonic()
    while True:
        try:
            with engine.connect() as conn:
                open_runs = conn.scalar(select(func.count()).select_from(Run)
                                        .where(Run.state.not_in(TERMINAL)))
                owed = conn.scalar(select(func.count()).select_from(Outbox))
        except Exception as exc:  # noqa: BLE001 - the store may still be coming back
            open_runs, owed = -1, repr(exc)[:80]
        if open_runs == 0 and owed == 0:
            return time.monotonic() - began
        if time.monotonic() - began > within:
            log(f"[quiet] gave up after {within:.0f} s: {open_runs} run(s) open, "
                f"{owed} outbox row(s)")
            return time.monotonic() - began
        time.sleep(0.5)


def check(*, engine: Engine, ledger: Path, sent: Sent, outcomes: list[Outcome],
          ticks_window: tuple[datetime, datetime], env: dict[str, str],
          report: Report) -> Report:
    with engine.connect() as conn:
        runs = conn.execute(select(Run.id, Run.flow_id, Run.state, Run.reason, Run.inputs,
                                   Run.trigger)).all()
        attempts = conn.execute(select(Attempt.run_id, Attempt.node_id, Attempt.number,
                                       Attempt.state, Attempt.uses, Attempt.error)).all()
        foreign = conn.execute(select(ExternalRun.external_id, ExternalRun.state,
                                      ExternalRun.details).where(
            ExternalRun.system == CRON_SYSTEM, ExternalRun.job_id == CRON_JOB)).all()
        owed = conn.scalar(select(func.count()).select_from(Outbox))
    _runs(runs, owed, report)
    _ledger(ledger, runs, attempts, report)
    _api_starts(runs, sent, report)
    _webhooks(runs, sent, report)
    _schedule(runs, ticks_window, report)
    _after(runs, report)
    _cron(runs, foreign, sent, report)
    _audit(env, report)
    _recovery(outcomes, report)
    report.require(not sent.errors, f"load requests that never succeeded: {sent.errors[:5]}")
    return report


def _runs(runs: list[Any], owed: int | None, report: Report) -> None:
    states = Counter(r.state for r in runs)
    per_flow = Counter(r.flow_id for r in runs)
    stuck = [r.id for r in runs if r.state not in TERMINAL]
    failed = [(r.flow_id, r.id, r.reason) for r in runs if r.state != RunState.SUCCEEDED.value
              and r.state in TERMINAL]
    report.say(f"runs: {len(runs)} started, {len(runs) - len(stuck)} finished "
               f"({dict(states)}); by flow {dict(sorted(per_flow.items()))}")
    report.say(f"work still owed (outbox rows): {owed}")
    report.require(not stuck, f"{len(stuck)} run(s) never finished: {stuck[:5]}")
    report.require(not failed, f"{len(failed)} run(s) did not succeed: {failed[:5]}")


def _ledger(ledger: Path, runs: list[Any], attempts: list[Any], report: Report) -> None:
    lines = Counter(ledger.read_text().splitlines()) if ledger.exists() else Counter()
    succeeded = {r.id for r in runs if r.state == RunState.SUCCEEDED.value}
    planned = {f"{a.run_id} {a.node_id} {a.number}" for a in attempts
               if a.uses == "script" and a.run_id in succeeded
               and a.state == NodeState.SUCCEEDED.value}
    known = {f"{a.run_id} {a.node_id} {a.number}" for a in attempts}
    duplicates = {k: n for k, n in lines.items() if n > 1}
    missing = planned - set(lines)
    stray = set(lines) - known
    redriven = sum(1 for a in attempts if a.number > 1)
    report.say(f"ledger: {sum(lines.values())} line(s) for {len(planned)} planned script "
               f"execution(s): {len(duplicates)} duplicate, {len(missing)} missing, "
               f"{len(stray)} without an attempt; attempts past the first: {redriven}")
    retried = Counter((a.error or a.state)[:90] for a in attempts
                      if a.state != NodeState.SUCCEEDED.value and a.state in TERMINAL_NODE)
    for why, n in retried.most_common(5):  # what a node's `retry:` absorbed, said plainly
        report.say(f"  attempts that did not succeed: {n} x {why}")
    report.require(not duplicates, f"executions done twice: {list(duplicates.items())[:5]}")
    report.require(not missing, f"executions never done: {sorted(missing)[:5]}")
    report.require(not stray, f"ledger lines no attempt accounts for: {sorted(stray)[:5]}")


def _api_starts(runs: list[Any], sent: Sent, report: Report) -> None:
    for flow, asked in sorted(sent.started.items()):
        stored = {r.id for r in runs if r.flow_id == flow and r.trigger.get("type") == "api"}
        report.say(f"POST /runs {flow}: {len(asked)} key(s) sent (retried through faults), "
                   f"{len(stored)} run(s) stored")
        report.require(stored == set(asked) and len(set(asked)) == len(asked),
                       f"{flow}: keyed starts and stored runs differ: "
                       f"{sorted(stored ^ set(asked))[:5]}")


def _webhooks(runs: list[Any], sent: Sent, report: Report) -> None:
    per_order = Counter(r.inputs.get("order") for r in runs if r.flow_id == "hook")
    twice = {o: n for o, n in per_order.items() if n > 1}
    keyed_missing = [o for o in sent.keyed_hooks if per_order[o] != 1]
    unkeyed_missing = [o for o in sent.unkeyed_ok if per_order[o] != 1]
    committed_unanswered = [o for o in sent.unkeyed_lost if per_order[o] == 1]
    report.say(f"webhooks: {len(sent.keyed_hooks)} with Idempotency-Key (retried), "
               f"{len(sent.unkeyed_ok)} without (answered 2xx), {len(sent.unkeyed_lost)} "
               f"without and unanswered ({len(committed_unanswered)} of those committed "
               f"anyway: a client without a key cannot know); runs per order > 1: {len(twice)}")
    report.require(not twice, f"webhook orders that started two runs: {twice}")
    report.require(not keyed_missing, f"keyed webhooks without exactly one run: "
                                      f"{keyed_missing[:5]}")
    report.require(not unkeyed_missing, f"answered webhooks without their run: "
                                        f"{unkeyed_missing[:5]}")


def _schedule(runs: list[Any], window: tuple[datetime, datetime], report: Report) -> None:
    ticks = Counter(r.trigger.get("tick") for r in runs if r.flow_id == "ticker")
    registered, ended = window
    first = registered.replace(second=0, microsecond=0) + timedelta(minutes=1)
    due = []
    while first <= ended:
        due.append(first.isoformat())
        first += timedelta(minutes=1)
    sure = [t for t in due if registered + timedelta(seconds=3) < datetime.fromisoformat(t)
            <= ended - timedelta(seconds=3)]  # near either end a tick may or may not fire
    report.say(f"schedule `* * * * *`: {len(ticks)} tick(s) fired, {len(due)} due "
               f"({', '.join(t[11:16] for t in due)}); fired twice: "
               f"{sum(1 for n in ticks.values() if n > 1)}")
    report.require(all(n == 1 for n in ticks.values()), f"ticks fired twice: {ticks}")
    report.require(set(sure) <= set(ticks), f"ticks never fired: {sorted(set(sure) - set(ticks))}")
    report.require(set(ticks) <= set(due), f"ticks not due: {sorted(set(ticks) - set(due))}")


def _after(runs: list[Any], report: Report) -> None:
    fired = Counter(r.trigger.get("external_id") for r in runs if r.flow_id == "downstream")
    upstream = [r.id for r in runs if r.flow_id == "chain" and r.state == "succeeded"]
    wrong = [u for u in upstream if fired[u] != 1]
    report.say(f"after: {len(upstream)} chain run(s) succeeded, {sum(fired.values())} "
               f"downstream run(s); not exactly one: {len(wrong)}")
    report.require(not wrong, f"chain runs without exactly one downstream run: {wrong[:5]}")


def _cron(runs: list[Any], foreign: list[Any], sent: Sent, report: Report) -> None:
    per_token = Counter(str(f.details.get("output_tail") or "").strip() for f in foreign)
    wrong = [t for t in sent.cron_tokens if per_token[t] != 1]
    unfinished = [f.external_id for f in foreign if f.state != NodeState.SUCCEEDED.value]
    fired = Counter(r.trigger.get("external_id") for r in runs if r.flow_id == "after-cron")
    not_once = [f.external_id for f in foreign if fired[f.external_id] != 1]
    report.say(f"cron reports: {len(sent.cron_tokens)} job run(s) wrapped, {len(foreign)} "
               f"recorded ({len(unfinished)} without their finish), "
               f"{sum(fired.values())} `after:` run(s) fired by them")
    report.require(not wrong, f"cron runs not recorded exactly once: {wrong[:5]}")
    report.require(not unfinished, f"cron runs whose finish never arrived: {unfinished[:5]}")
    report.require(not not_once, f"cron runs without exactly one after: run: {not_once[:5]}")


def _audit(env: dict[str, str], report: Report) -> None:
    done = subprocess.run([sys.executable, "-m", "interlock", "audit", "verify"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    said = (done.stdout + done.stderr).strip().splitlines()
    report.say(f"audit verify: {said[-1] if said else done.returncode}")
    report.require(done.returncode == 0, f"audit verify failed: {said[-3:]}")


def _recovery(outcomes: list[Outcome], report: Report) -> None:
    kinds = Counter(o.fault.kind.value for o in outcomes)
    report.injected = kinds
    report.recovered = Counter(o.fault.kind.value for o in outcomes if o.recovery_s is not None)
    never = sorted(report.planned_kinds - set(kinds))
    report.require(not never, f"fault kinds planned but never injected: {never}")
    by_kind = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
    report.say(f"faults injected: {len(outcomes)} ({by_kind})")
    for kind in sorted(kinds):
        times = [o.recovery_s for o in outcomes if o.fault.kind.value == kind]
        done = sorted(t for t in times if t is not None)
        if done:
            report.say(f"  recovery {kind:17} p50 {statistics.median(done):6.2f} s   "
                       f"max {done[-1]:6.2f} s   (n={len(done)})")
        report.require(len(done) == len(times), f"{kind}: {len(times) - len(done)} fault(s) "
                                                "after which no probe run completed")
    every = sorted(o.recovery_s for o in outcomes if o.recovery_s is not None)
    if every:
        report.say(f"  recovery, all faults    p50 {statistics.median(every):6.2f} s   "
                   f"max {every[-1]:6.2f} s")
    notes = [f"{o.fault.describe()}: {o.note}" for o in outcomes if o.note]
    for note in notes:
        report.say(f"  note: {note}")
