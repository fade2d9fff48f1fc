"""`uses: noop`: finishes at once and returns its `with:` as outputs (benchmarks, demos)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from interlock.adapters import Adapter, Handle, JobSpec, LogChunk, NodeState, Observation


class NoopAdapter(Adapter):
    kind: ClassVar[str] = "noop"
    settles_in_submit: ClassVar[bool] = True  # its submit is pure: settled while planning

    def submit(self, job: JobSpec, *, key: str) -> Observation:
        handle = Handle(kind=self.kind, external_id=key)
        return Observation(handle=handle, state=NodeState.SUCCEEDED, remote_status="done",
                           outputs=dict(job.params))

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        # Nothing is ever in flight: a no-op finishes inside submit.
        return [Observation(handle=h, state=NodeState.SUCCEEDED, remote_status="done")
                for h in handles]

    def cancel(self, handle: Handle) -> None:
        return None

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        return LogChunk(text="")
