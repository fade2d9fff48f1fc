"""Test doubles for flows and the engine: an adapter that plays back scripted statuses.

    adapter = ScriptedAdapter({"extract": [Step.running(), Step.succeeded(rows=3)],
                               "load": [Step.transient("503"), Step.failed("disk full")]})
    with adapter.installed():          # registers it in the default registry as `uses: scripted`
        ...

Each node id maps to the steps its attempts go through: a `submit` consumes the first step
(a Transient/Rejected step raises from submit), each `poll` consumes the next one, and the
last step repeats. Keys are remembered, so the same key never "starts" twice: the adapter
counts real starts in ``starts`` and every submit call in ``submits``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import create_engine, text

from interlock.adapters.contract import Adapter, Handle, JobSpec, LogChunk, Observation
from interlock.adapters.registry import AdapterRegistry, default_registry
from interlock.errors import Rejected, Transient
from interlock.states import NodeState
from interlock.store.db import dispose_all


@dataclass(frozen=True)
class Step:
    state: NodeState | None            # None: the step raises ``error_kind`` instead
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: type[Exception] | None = None

    @classmethod
    def running(cls) -> Step:
        return cls(NodeState.RUNNING)

    @classmethod
    def succeeded(cls, **outputs: Any) -> Step:
        return cls(NodeState.SUCCEEDED, outputs=outputs)

    @classmethod
    def failed(cls, error: str = "failed") -> Step:
        return cls(NodeState.FAILED, error=error)

    @classmethod
    def lost(cls) -> Step:
        return cls(NodeState.LOST, error="vanished")

    @classmethod
    def transient(cls, error: str = "try again") -> Step:
        return cls(None, error=error, error_kind=Transient)

    @classmethod
    def rejected(cls, error: str = "refused") -> Step:
        return cls(None, error=error, error_kind=Rejected)


class ScriptedAdapter(Adapter):
    kind: ClassVar[str] = "scripted"
    poll_interval: ClassVar[tuple[float, float]] = (0.05, 0.2)

    def __init__(self, script: dict[str, list[Step]], default: list[Step] | None = None):
        self.script = script
        self.default = default or [Step.succeeded()]
        self.submits: Counter[str] = Counter()     # submit calls per key
        self.starts: Counter[str] = Counter()      # jobs really started per key (1 at most)
        self.cancelled: list[str] = []
        self._cursor: dict[str, int] = {}          # key -> index of the current step
        self._refused: dict[str, int] = {}         # key -> submits refused so far
        self._lock = threading.Lock()

    def submit(self, job: JobSpec, *, key: str) -> Handle | Observation:
        with self._lock:
            self.submits[key] += 1
            if key not in self._cursor:
                steps, tried = self._steps(job.node_id), self._refused.get(key, 0)
                step = steps[min(tried, len(steps) - 1)]
                if step.error_kind is not None:  # this submit fails; the next one moves on
                    self._refused[key] = tried + 1
                    raise step.error_kind(step.error or "scripted error")
                self._cursor[key] = tried
                self.starts[key] += 1
            handle = Handle(kind=self.kind, external_id=key, data={"node_id": job.node_id})
            return self._observe(handle)

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        with self._lock:
            for h in handles:
                self._cursor[h.external_id] = self._cursor.get(h.external_id, 0) + 1
            return [self._observe(h) for h in handles]

    def cancel(self, handle: Handle) -> None:
        self.cancelled.append(handle.external_id)

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        step = self._step(handle)
        return LogChunk(text=f"{handle.external_id}: {step.state}\n")

    def _steps(self, node_id: str) -> list[Step]:
        return self.script.get(node_id) or self.default

    def _step(self, handle: Handle) -> Step:
        steps = self._steps(handle.data["node_id"])
        return steps[min(self._cursor.get(handle.external_id, 0), len(steps) - 1)]

    def _observe(self, handle: Handle) -> Observation:
        step = self._step(handle)
        if step.error_kind is not None:
            raise step.error_kind(step.error or "scripted error")
        assert step.state is not None
        return Observation(handle=handle, state=step.state, remote_status=step.state.value,
                           outputs=step.outputs, error=step.error)

    @contextmanager
    def installed(self, registry: AdapterRegistry | None = None) -> Iterator[ScriptedAdapter]:
        """Register this adapter as `uses: scripted` for the duration of the block."""
        registry = registry or default_registry()
        registry.add_instance(self)
        try:
            yield self
        finally:
            registry.remove(self.kind)


def pg_schema(admin_url: str, prefix: str = "t") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema; the schema is dropped
    (and the store's engines disposed) when the generator is resumed or closed. For tests
    and benchmarks: `yield from pg_schema(url)` in a fixture, or `for url in ...`."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{admin_url}?options=-csearch_path%3D{schema}"
    finally:
        dispose_all()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
