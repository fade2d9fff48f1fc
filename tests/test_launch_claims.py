"""One launch per attempt key across workers (`interlock.adapters.launch_once`), on the real
store (SQLite and PostgreSQL).

The Dagster adapter cannot choose its run ids, so its submit looks the key's tag up and then
launches. Before the claim, two deliveries of the same attempt could both look, both find
nothing and both launch: two Dagster runs for one attempt. `launch_once` is the helper its
submit now runs that look-up-and-launch through; these tests race it the way two workers do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from interlock.adapters import Transient, launch_once
from interlock.adapters.launches import launch_claims

KEY = "0123456789abcdef0123456789abcdef.extract.1"


class ForeignSystem:
    """Stands for the system's run list: a launch takes a while, then the run exists."""

    def __init__(self, takes_s: float = 0.3) -> None:
        self.takes_s = takes_s
        self.launches: list[str] = []
        self._lock = threading.Lock()

    def look_up_or_launch(self) -> str:
        """What an adapter passes to `launch_once`: adopt a run with the key's tag, else launch."""
        with self._lock:
            if self.launches:
                return self.launches[0]
        time.sleep(self.takes_s)  # the launch request is in flight; the run is not listed yet
        with self._lock:
            self.launches.append(f"run-{len(self.launches) + 1}")
            return self.launches[-1]


def _race(n: int, call: Callable[[], str]) -> list[str | BaseException]:
    results: list[str | BaseException] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(call())
        except BaseException as exc:  # noqa: BLE001  (reported to the test)
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_the_unguarded_look_up_then_launch_launches_twice() -> None:
    """The defect itself, without the claim: both deliveries launch."""
    system = ForeignSystem()
    assert sorted(map(str, _race(2, system.look_up_or_launch))) == ["run-1", "run-2"]
    assert len(system.launches) == 2


def test_two_workers_racing_one_key_launch_once(store_url: str) -> None:
    system = ForeignSystem()
    results = _race(2, lambda: launch_once(KEY, system.look_up_or_launch))
    assert system.launches == ["run-1"]          # exactly one got to launch
    assert results == ["run-1", "run-1"]         # and the other saw its result


def test_many_workers_and_a_late_redelivery_launch_once(store_url: str) -> None:
    system = ForeignSystem(takes_s=0.2)
    results = _race(6, lambda: launch_once(KEY, system.look_up_or_launch))
    assert results == ["run-1"] * 6 and system.launches == ["run-1"]
    calls: list[str] = []
    assert launch_once(KEY, lambda: calls.append("again") or "run-2") == "run-1"
    assert calls == []  # the recorded result is returned without calling the system


def test_a_failed_launch_gives_the_claim_back_at_once(store_url: str) -> None:
    def refused() -> str:
        raise Transient("503 from the webserver")

    with pytest.raises(Transient, match="503"):
        launch_once(KEY, refused)
    started = time.monotonic()
    assert launch_once(KEY, lambda: "run-1", wait_s=0) == "run-1"
    assert time.monotonic() - started < 5


def test_a_held_claim_makes_the_other_caller_transient_not_a_second_launch(
        store_url: str) -> None:
    """A holder still inside its launch after `wait_s`: the other caller does not launch, it
    raises Transient so the executor submits again later."""
    assert launch_claims().claim(KEY, owner="other-worker:1:ab", lease_s=60).claimed
    calls: list[str] = []
    with pytest.raises(Transient, match="in progress on other-worker:1:ab"):
        launch_once(KEY, lambda: calls.append("x") or "run-2", wait_s=0.2)
    assert calls == []


def test_a_dead_holders_claim_is_taken_over_once_its_lease_runs_out(store_url: str) -> None:
    """The holder died between claim and record: after its lease, one caller takes over and
    runs the look-up (which adopts the run if the dead holder's launch had landed)."""
    assert launch_claims().claim(KEY, owner="dead-worker:1:ab", lease_s=0.3).claimed
    system = ForeignSystem(takes_s=0.1)
    results = _race(3, lambda: launch_once(KEY, system.look_up_or_launch, wait_s=10))
    assert results == ["run-1"] * 3 and system.launches == ["run-1"]
