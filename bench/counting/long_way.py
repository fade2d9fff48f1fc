"""`bench/throughput.py --long-way`: `noop` nodes go the way every other adapter's nodes go.

A `noop` node settles in submit: the start's own transaction runs a whole `noop` flow
(`docs/dispatch.md`), so the bench's workers stay idle. With this, each node is queued with
an EXECUTE message that a worker takes from Redis, submits and records, and the next node
is planned there (chained in the same task): the path of a script's or a foreign job's
node, without the job. Set in the bench's process and, through `sitecustomize.py`, in its
workers'. Nothing in `src/` knows about it.
"""

from __future__ import annotations

import os

ENV = "INTERLOCK_BENCH_LONG_WAY"


def install() -> None:
    from interlock_noop import NoopAdapter

    NoopAdapter.settles_in_submit = False


def install_from_env() -> None:
    if os.environ.get(ENV):
        install()
