"""Concurrency limits (`docs/concurrency.md`) on both stores: per flow (queue, cancel_new,
fail_new), per namespace (policy files; a child cannot loosen its parent), per system (the
systems file). An in-flight sampler reads the store throughout and must never see a limit
exceeded; queued runs start in the order they were started.

The race with two real `interlock worker` processes is in `tests/test_concurrency_workers.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from interlock.config.env import settings
from interlock.dispatch.controller import advance
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.limits.scopes import namespace_limit, run_scopes
from interlock.operations import runs as ops
from interlock.policies.load import parse_policy
from interlock.spec.loader import parse_flow
from interlock.states import NODE_IN_FLIGHT, RUN_ACTIVE, NodeState, RunState
from interlock.store.db import session_scope
from interlock.store.tables import Attempt, Run, StateEvent
from tests.helpers import wait_run, write_flow

SYSTEMS = """
systems:
  script/batch:
    concurrency: {limit}
"""

QUEUED_FLOW = """
id: one-at-a-time
namespace: tests.limits
concurrency: {{limit: 1{behavior}}}
nodes:
  work: {{uses: script, with: {{command: "sleep 0.3"}}}}
"""


def counts(namespace: str, flow_id: str | None, system: str | None) -> tuple[int, int]:
    """(runs in flight in the namespace or flow, attempts in flight on the system)."""
    with session_scope() as session:
        where = [Run.namespace == namespace, Run.state.in_([s.value for s in RUN_ACTIVE])]
        if flow_id is not None:
            where.append(Run.flow_id == flow_id)
        runs = session.scalar(select(func.count()).select_from(Run).where(*where)) or 0
        attempts = 0
        if system is not None:
            attempts = session.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.system == system,
                Attempt.state.in_([s.value for s in NODE_IN_FLIGHT]))) or 0
        return runs, attempts


@contextmanager
def sampling(read: Callable[[], tuple[int, int]]) -> Iterator[list[tuple[int, int]]]:
    """Reads ``read()`` from the store every 20 ms while the block runs."""
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            seen.append(read())
            stop.wait(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=10)


def wait_state(run_id: str, state: RunState, timeout: float = 30.0) -> None:
    """Until the run is in ``state`` (it must get there within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while ops.get_run(run_id).state is not state:
        assert time.monotonic() < deadline, (run_id, ops.get_run(run_id).state, state)
        time.sleep(0.05)


def started_order(run_ids: list[str]) -> list[str]:
    """The runs in the order they went RUNNING (their state events)."""
    with session_scope() as session:
        rows = session.execute(
            select(StateEvent.run_id).where(StateEvent.run_id.in_(run_ids),
                                            StateEvent.entity == "run",
                                            StateEvent.to_state == RunState.RUNNING.value)
            .order_by(StateEvent.id)).all()
    return [r[0] for r in rows]


def start(flow_text: str, tmp_path: Path, dispatcher: EmbeddedDispatcher, n: int,
          name: str = "flow.yaml") -> list[str]:
    flow, _ = ops.register(write_flow(tmp_path, flow_text, name).read_text())
    return [ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                          dispatcher=dispatcher) for _ in range(n)]


# --- the flow file and the policy file say it -----------------------------------------------

def test_flow_concurrency_is_validated_with_its_place() -> None:
    for bad, words in (("{limit: 0}", "greater than or equal to 1"),
                       ("{limit: 1, behavior: drop}", "queue"),
                       ("{limit: 1, burst: 3}", "burst")):
        text = QUEUED_FLOW.replace("{{limit: 1{behavior}}}", bad)
        with pytest.raises(SpecError) as caught:
            parse_flow(text, "flow.yaml")
        assert words in str(caught.value) and "flow.yaml:4" in str(caught.value)


def test_a_child_namespace_cannot_loosen_its_parents_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "bank.yaml").write_text("policy: bank-runs\nscope: 'bank.*'\n"
                                      "concurrency: {runs: 3}\n")
    (folder / "payments.yaml").write_text("policy: payments-runs\nscope: bank.payments\n"
                                          "concurrency: {runs: 10}\n")
    (folder / "eu.yaml").write_text("policy: eu-runs\nscope: bank.eu\nconcurrency: {runs: 1}\n")
    (folder / "tried.yaml").write_text("policy: tried\nscope: 'bank.*'\nmode: report\n"
                                       "concurrency: {runs: 1}\n")
    monkeypatch.setenv("INTERLOCK_POLICIES", str(folder))
    settings.cache_clear()
    assert namespace_limit("bank.payments") == 3   # 10 would loosen the parent's 3
    assert namespace_limit("bank.eu") == 1         # tightening is allowed
    assert namespace_limit("retail") is None       # report-only limits hold nowhere
    flow = parse_flow("id: pay\nnamespace: bank.payments\nconcurrency: {limit: 2}\n"
                      "nodes: {a: {uses: noop}}\n", "f.yaml")
    assert [(s.key, s.limit) for s in run_scopes(flow)] == [
        ("flow:bank.payments/pay", 2), ("namespace:bank.payments", 3)]


def test_a_policy_needs_rules_or_a_limit() -> None:
    with pytest.raises(SpecError, match="`rules:`, `concurrency:`"):
        parse_policy("policy: empty\nscope: '*'\n", "empty.yaml")
    with pytest.raises(SpecError, match="greater than or equal to 1"):
        parse_policy("policy: zero\nconcurrency: {runs: 0}\n", "zero.yaml")


# --- enforced ---------------------------------------------------------------------------------

def test_flow_limit_queues_and_starts_runs_in_the_order_they_were_started(
        embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    with sampling(lambda: counts("tests.limits", "one-at-a-time", None)) as seen:
        run_ids = start(QUEUED_FLOW.format(behavior=""), tmp_path, embedded, 4)
        details = [wait_run(r, timeout=60) for r in run_ids]
    assert [d.state for d in details] == [RunState.SUCCEEDED] * 4
    assert max(runs for runs, _ in seen) == 1 and len(seen) > 10
    assert started_order(run_ids) == run_ids
    events = [e for e in ops.run_events(run_ids[-1]) if e.entity == "run"]
    assert [e.to_state for e in events] == ["pending", "queued", "running", "succeeded"]
    assert "flow tests.limits/one-at-a-time is at its concurrency limit of 1" in events[1].reason


@pytest.mark.parametrize("behavior,ends", [("cancel_new", RunState.CANCELLED),
                                           ("fail_new", RunState.FAILED)])
def test_cancel_new_and_fail_new_end_the_new_run_at_once(
        embedded: EmbeddedDispatcher, tmp_path: Path, behavior: str, ends: RunState) -> None:
    flow_text = QUEUED_FLOW.format(behavior=f", behavior: {behavior}").replace(
        "sleep 0.3", "sleep 1.5")
    first = start(flow_text, tmp_path, embedded, 1)[0]
    wait_state(first, RunState.RUNNING)
    second = start(flow_text, tmp_path, embedded, 1)[0]
    refused = wait_run(second, timeout=30)
    assert refused.state is ends
    assert f"concurrency limit of 1 (`{behavior}`)" in (refused.reason or "")
    assert [n.state for n in refused.nodes] == [NodeState.CANCELLED]
    assert not refused.nodes[0].attempts  # nothing was submitted
    assert wait_run(first, timeout=30).state is RunState.SUCCEEDED


SYSTEM_FAN = """
id: fan-on-batch
namespace: tests.limits
nodes:
  a: {uses: script, with: {system: script/batch, command: "sleep 0.3"}}
  b: {uses: script, with: {system: script/batch, command: "sleep 0.3"}}
  c: {uses: script, with: {system: script/batch, command: "sleep 0.3"}}
  d: {uses: script, with: {system: script/batch, command: "sleep 0.3"}}
  free: {uses: script, with: {command: "sleep 0.3"}}
"""


def test_system_limit_holds_nodes_of_every_flow_in_slot_wait(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systems = tmp_path / "systems.yaml"
    systems.write_text(SYSTEMS.format(limit=2))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    settings.cache_clear()
    with sampling(lambda: counts("tests.limits", None, "script/batch")) as seen:
        run_ids = start(SYSTEM_FAN, tmp_path, embedded, 2)
        details = [wait_run(r, timeout=60) for r in run_ids]
    assert [d.state for d in details] == [RunState.SUCCEEDED] * 2
    assert max(a for _, a in seen) == 2
    waited = {e.node_id for r in run_ids for e in ops.run_events(r)
              if e.to_state == NodeState.SLOT_WAIT.value}
    assert waited and waited <= {"a", "b", "c", "d"}  # `free` names no system
    reasons = {e.reason for r in run_ids for e in ops.run_events(r)
               if e.to_state == NodeState.SLOT_WAIT.value}
    assert reasons == {"system script/batch is at its concurrency limit of 2"}


def test_namespace_limit_from_a_policy_and_cancelling_a_queued_run(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "limits.yaml").write_text("policy: limits-runs\nscope: tests.limits\n"
                                        "concurrency: {runs: 1}\n")
    monkeypatch.setenv("INTERLOCK_POLICIES", str(folder))
    settings.cache_clear()
    go = tmp_path / "go"  # the running run holds the namespace's slot until this exists
    slow = ("id: slow\nnamespace: tests.limits\nnodes: {a: {uses: script, with: {command: "
            f"'for i in $(seq 600); do [ -f {go} ] && exit 0; sleep 0.1; done; exit 1'}}}}}}\n")
    other = "id: other\nnamespace: tests.limits\nnodes: {a: {uses: noop}}\n"
    running = start(slow, tmp_path, embedded, 1, "slow.yaml")[0]
    queued = start(other, tmp_path, embedded, 2, "other.yaml")
    for run_id in queued:  # both planned, so the check below is not a race with planning
        wait_state(run_id, RunState.QUEUED)
    ops.cancel_run(queued[0], dispatcher=embedded)
    assert wait_run(queued[0]).state is RunState.CANCELLED
    assert ops.get_run(queued[1]).state is RunState.QUEUED  # still behind the slow run
    go.touch()
    assert wait_run(running).state is RunState.SUCCEEDED
    assert wait_run(queued[1]).state is RunState.SUCCEEDED
    assert "namespace tests.limits is at its concurrency limit of 1" in " ".join(
        e.reason or "" for e in ops.run_events(queued[1]))


def test_a_queued_run_whose_flow_says_cancel_new_ends_when_its_turn_comes(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued for its namespace, then its own flow's `cancel_new` limit is the full one:
    the queued run ends cancelled (it does not loop)."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "ns.yaml").write_text("policy: ns-runs\nscope: tests.limits\n"
                                    "concurrency: {runs: 1}\n")
    monkeypatch.setenv("INTERLOCK_POLICIES", str(folder))
    settings.cache_clear()
    go = tmp_path / "go"
    hold = ("id: hold\nnamespace: tests.limits\nnodes: {a: {uses: script, with: {command: "
            f"'for i in $(seq 600); do [ -f {go} ] && exit 0; sleep 0.1; done; exit 1'}}}}}}\n")
    holder = start(hold, tmp_path, embedded, 1, "hold.yaml")[0]
    flow_text = QUEUED_FLOW.format(behavior=", behavior: cancel_new").replace(
        "sleep 0.3", f"for i in $(seq 600); do [ -f {go}2 ] && exit 0; sleep 0.1; done")
    first, second = start(flow_text, tmp_path, embedded, 2)
    deadline = time.monotonic() + 30
    while {ops.get_run(r).state for r in (first, second)} != {RunState.QUEUED}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    go.touch()  # the namespace frees: `first` starts; `second` still waits for it
    assert wait_run(holder).state is RunState.SUCCEEDED
    wait_state(first, RunState.RUNNING)
    # Planned again now (as its periodic re-check would), `second` finds its flow's limit
    # full before its namespace's: `cancel_new` ends the queued run.
    advance(second, dispatcher=embedded)
    refused = wait_run(second, timeout=30)
    assert refused.state is RunState.CANCELLED and "`cancel_new`" in (refused.reason or "")
    (tmp_path / "go2").touch()
    assert wait_run(first, timeout=30).state is RunState.SUCCEEDED


def test_a_retry_is_admitted_under_the_limit_again(embedded: EmbeddedDispatcher,
                                                   tmp_path: Path) -> None:
    ok, go = tmp_path / "ok", tmp_path / "go"
    wait_go = f"for i in $(seq 600); do [ -f {go} ] && exit 0; sleep 0.1; done; exit 1"
    flow_text = QUEUED_FLOW.format(behavior="").replace(
        '"sleep 0.3"', f"'if [ -f {ok} ]; then {wait_go}; else exit 1; fi'")
    failed = start(flow_text, tmp_path, embedded, 1)[0]
    assert wait_run(failed).state is RunState.FAILED
    ok.touch()
    holder = start(flow_text, tmp_path, embedded, 1)[0]
    wait_state(holder, RunState.RUNNING)
    ops.retry_run(failed, dispatcher=embedded)
    wait_state(failed, RunState.QUEUED)  # the slot is the holder's
    go.touch()
    assert wait_run(holder).state is RunState.SUCCEEDED
    assert wait_run(failed).state is RunState.SUCCEEDED
    states = [e.to_state for e in ops.run_events(failed) if e.entity == "run"]
    assert states[-4:] == ["pending", "queued", "running", "succeeded"]
