"""Launch claims: which worker may launch the foreign job of an attempt key, and what it
launched."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class LaunchClaim(Base):
    """One per attempt key launched through `interlock.adapters.launch_once`. The primary key
    makes the first insert the only claim; a holder that died is replaced by a compare-and-set
    on `owner` and `expires_at` once the lease ran out; `result` is kept once recorded."""

    __tablename__ = "launch_claims"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # the attempt's key
    owner: Mapped[str] = mapped_column(String(200))                  # host:pid:token
    expires_at: Mapped[datetime]                                     # the holder's lease
    result: Mapped[str | None] = mapped_column(String(250))          # e.g. the Dagster run id
    claimed_at: Mapped[datetime]
    launched_at: Mapped[datetime | None]
