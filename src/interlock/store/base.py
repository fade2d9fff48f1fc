"""The declarative base every table shares, and the helper compare-and-set updates use.

Tables live in `interlock.store.tables` (one module per concern); this module imports none of
them, so they can all import it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, CursorResult, Result, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

from interlock.store.types import UTCDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}



def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (what a compare-and-set checks)."""
    return cast(CursorResult[Any], result).rowcount


def dialect_insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_*` on both stores."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
