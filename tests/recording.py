"""Cassettes of adapter HTTP, recorded from the harness's real servers.

`INTERLOCK_RECORD_CASSETTES=1` records every request and response anew (the harness starts
the server); otherwise cassettes are only replayed, and a request missing from one fails.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import vcr

from interlock.adapters.contract import Adapter, Handle, Observation

RECORDING = os.environ.get("INTERLOCK_RECORD_CASSETTES") == "1"


def cassettes_of(kind: str) -> vcr.VCR:
    """Cassettes under `tests/cassettes/<kind>/`, matched without host and port (replays
    point at any address), the Authorization header filtered out."""
    return vcr.VCR(cassette_library_dir=str(Path(__file__).parent / "cassettes" / kind),
                   record_mode="all" if RECORDING else "none",
                   match_on=["method", "path", "query", "body"],
                   filter_headers=["authorization"], decode_compressed_response=True)


def until_finished(adapter: Adapter, handle: Handle, *, polls: int) -> Observation:
    """Poll until the job finishes: paced while recording, as fast as the cassette replays."""
    for _ in range(polls):
        (obs,) = adapter.poll([handle])
        if obs.finished:
            return obs
        if RECORDING:
            time.sleep(0.5)
    raise AssertionError(f"{handle.external_id} did not finish")
