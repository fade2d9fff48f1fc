"""The durable store: SQLAlchemy tables, CAS transitions, the outbox, the audit append."""

from interlock.store import observed as _observed  # noqa: F401  (provides the adapters' read API)
