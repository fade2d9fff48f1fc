"""The adapter contract and the registry that finds adapters by entry point."""

from interlock.adapters.contract import (
    Adapter,
    ForeignEvent,
    Handle,
    Health,
    JobSpec,
    LogChunk,
    Observation,
    RemoteJob,
    RetryMode,
)
from interlock.adapters.registry import AdapterRegistry, default_registry

__all__ = [
    "Adapter",
    "RetryMode",
    "AdapterRegistry",
    "ForeignEvent",
    "Handle",
    "Health",
    "JobSpec",
    "LogChunk",
    "Observation",
    "RemoteJob",
    "default_registry",
]
