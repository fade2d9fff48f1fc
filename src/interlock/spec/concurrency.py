"""A flow's `concurrency:`: how many of its runs may be in flight, and what a new run does
when they all are (Kestra's behaviours; enforced in the store by `interlock.limits`).

    concurrency:
      limit: 1
      behavior: queue       # queue (default) | cancel_new | fail_new
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from interlock.spec.fields import Strict

MAX_LIMIT = 100_000


class Overflow(StrEnum):
    QUEUE = "queue"            # wait (RunState.QUEUED) and start, oldest first, when one ends
    CANCEL_NEW = "cancel_new"  # the new run ends CANCELLED at once
    FAIL_NEW = "fail_new"      # the new run ends FAILED at once


class Concurrency(Strict):
    limit: int = Field(ge=1, le=MAX_LIMIT, description="runs of this flow in flight at once")
    behavior: Overflow = Field(default=Overflow.QUEUE, description=(
        "what a run started while `limit` runs are in flight does"))
