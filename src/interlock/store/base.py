"""The declarative base every table shares, and the helper compare-and-set updates use.

Tables live in `interlock.store.tables` (one module per concern); this module imports none of
them, so they can all import it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, CursorResult, Result
from sqlalchemy.orm import DeclarativeBase

from interlock.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}



def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (what a compare-and-set checks)."""
    return cast(CursorResult[Any], result).rowcount
