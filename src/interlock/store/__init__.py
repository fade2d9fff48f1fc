"""The durable store: SQLAlchemy tables, CAS transitions, the outbox, the audit append."""

from interlock.store import launches as _launches  # noqa: F401  (provides adapters' launch claims)
from interlock.store import observed as _observed  # noqa: F401  (provides the adapters' read API)
