"""Finding a lineage node by its name, for the console's lineage map (`GET /lineage/nodes`):
the transaction around `interlock.lineage.queries.search`."""

from __future__ import annotations

from interlock.lineage import queries
from interlock.lineage.nodes import NodeKind
from interlock.store.db import session_scope


def search_nodes(*, text: str, kind: NodeKind | None, system: str | None,
                 limit: int) -> queries.NodeMatches:
    with session_scope() as session:
        return queries.search(session, text=text, kind=kind, system=system, limit=limit)
