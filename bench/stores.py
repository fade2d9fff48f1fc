"""Throw-away stores for the benchmarks: a fresh PostgreSQL schema, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from sqlalchemy import create_engine, text


def pg_schema(admin_url: str, prefix: str) -> Iterator[str]:
    """Yields a URL whose search_path is a new, empty schema; drops it when resumed."""
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        from interlock.store.db import dispose_all
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
