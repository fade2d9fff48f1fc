"""Launch a foreign job at most once per attempt key, across workers: `launch_once`.

For systems that cannot be given the job's id (Dagster chooses its run ids), an adapter makes
`submit` idempotent by tagging the launch with the attempt key and looking the tag up first.
Look-up-then-launch is a race between two deliveries of the same attempt (two workers, or a
redelivery while the first submit is still in its HTTP call): both look, both find nothing,
both launch. `launch_once(key, launch)` closes it with a claim in the store:

- the first caller inserts the key's claim row (unique) with a lease, runs `launch` (which
  still looks the tag up first: a holder may have launched and died before recording), and
  records what it returns; a raising `launch` gives the claim back at once;
- a caller that finds the result recorded returns it without calling `launch`;
- a caller that finds the claim held waits for the result, up to `wait_s`, then raises
  `Transient` (the executor submits again later); a claim whose lease ran out (its holder
  died) is taken over by a compare-and-set, so at most one caller takes it.

`lease_s` must outlast `launch` (HTTP timeouts are tens of seconds). The store provides the
claims (`interlock.store.launches`, installed when the store package is imported), as for
`interlock.adapters.observed`: the inversion keeps this package below the store.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from interlock.errors import InterlockError, Transient

LEASE_S = 120.0   # how long a claim holder has to launch before others may take over
WAIT_S = 15.0     # how long a caller waits for another's launch before raising Transient
CHECK_EVERY_S = 0.05


@dataclass(frozen=True)
class ClaimState:
    """What `claim` found: the claim is ours, or it is held by another, or it is done."""

    claimed: bool
    result: str | None = None          # what the launch recorded, once one finished
    held_by: str | None = None
    until: datetime | None = None      # when the holder's lease runs out


class LaunchClaims(Protocol):
    def claim(self, key: str, *, owner: str, lease_s: float) -> ClaimState:
        """Take the key's claim for `owner` if it is free or its lease ran out."""

    def record(self, key: str, *, owner: str, result: str) -> None:
        """Record what the launch made (kept: later calls return it)."""

    def release(self, key: str, *, owner: str) -> None:
        """Give back a claim whose launch failed, so the next caller launches at once."""


_provider: LaunchClaims | None = None


def provide(claims: LaunchClaims) -> None:
    """Install the store's implementation (done by `interlock.store` on import)."""
    global _provider
    _provider = claims


def launch_claims() -> LaunchClaims:
    if _provider is None:
        raise InterlockError("no store is installed: import interlock.store before submitting")
    return _provider


def launch_once(key: str, launch: Callable[[], str], *, lease_s: float = LEASE_S,
                wait_s: float = WAIT_S) -> str:
    """`launch()`'s result for `key`: called by one caller at a time, and by none once a
    result is recorded (see the module's docstring)."""
    claims, owner = launch_claims(), f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait_s
    while True:
        state = claims.claim(key, owner=owner, lease_s=lease_s)
        if state.result is not None:
            return state.result
        if state.claimed:
            break
        if time.monotonic() >= deadline:
            raise Transient(f"the launch of {key} is in progress on {state.held_by} (its claim "
                            f"lasts until {state.until:%H:%M:%S} UTC); will look again")
        time.sleep(CHECK_EVERY_S)
    try:
        result = launch()
    except BaseException:
        claims.release(key, owner=owner)
        raise
    claims.record(key, owner=owner, result=result)
    return result
