"""The adapter contract and the registry that finds adapters by entry point."""

from interlock.adapters.contract import (
    Adapter,
    Handle,
    Health,
    JobSpec,
    LogChunk,
    Observation,
    RemoteJob,
)
from interlock.adapters.registry import AdapterRegistry, default_registry

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "Handle",
    "Health",
    "JobSpec",
    "LogChunk",
    "Observation",
    "RemoteJob",
    "default_registry",
]
