"""`uses: agent`: a model on a registered `llm/<name>` system, in a loop of governed,
recorded steps (`docs/agents.md`).

`submit` opens the attempt's session (the conversation starts with the instructions and
the prompt) and returns a handle; each `poll` runs a slice of the loop under the session's
lease. Nothing lives in the worker between polls: a killed worker's successor goes on
from the last recorded step.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from interlock.adapters import (
    Adapter,
    Handle,
    JobSpec,
    LogChunk,
    NodeState,
    Observation,
    Rejected,
    registered,
)
from interlock.adapters.agents import agent_host
from interlock_agent import mcp_tools
from interlock_agent.approval import needed
from interlock_agent.loop import LostLease, Slice
from interlock_agent.params import AgentParams

KIND = "agent"
LEASE_S = 120.0  # longer than a slice plus one request's timeout
log = logging.getLogger(__name__)


class AgentAdapter(Adapter):
    kind: ClassVar[str] = KIND
    params_model: ClassVar[type[BaseModel]] = AgentParams
    poll_interval: ClassVar[tuple[float, float]] = (0.05, 2.0)
    system_has_url: ClassVar[bool] = False  # it talks to `llm/` systems, not `agent/` ones

    def submit(self, job: JobSpec, *, key: str) -> Handle:
        if job.secrets:  # a resolved secret would be sent to the model and kept in the trail
            raise Rejected("`uses: agent` takes no secret() values: they would be sent to "
                           "the model; the system's `llm.api_key` is the only secret it uses")
        try:
            params = AgentParams.model_validate(job.params)
        except ValidationError as exc:
            raise Rejected(f"invalid `with:` for uses: agent: {exc}") from None
        system = registered(params.system, kind="llm")
        allowed = system.llm_settings.models
        if allowed and params.model not in allowed:
            raise Rejected(f"model {params.model!r} is not allowed on {system.name} "
                           f"(models: {', '.join(allowed)})")
        params = mcp_tools.expand(params)  # each MCP allow-list against the server's list
        for tool in params.tools:  # rules a request could not hold fail now, not mid-run
            wanted = needed(tool.approval)
            problem = wanted and wanted.rules and agent_host().approval_problem(wanted.rules)
            if problem:
                raise Rejected(f"tool `{tool.name}`: {problem}")
        messages: list[dict[str, Any]] = []
        if params.instructions:
            messages.append({"role": "system", "content": params.instructions})
        messages.append({"role": "user", "content": params.prompt})
        agent_host().open(key=key, run_id=job.run_id, node_id=job.node_id,
                          attempt=job.attempt, params=params.model_dump(by_alias=True),
                          messages=messages)
        return Handle(kind=KIND, external_id=key, system=system.name,
                      data={"traceparent": job.traceparent})

    def poll(self, handles: Sequence[Handle]) -> list[Observation]:
        return [self._advance(h) for h in handles]

    def _advance(self, handle: Handle) -> Observation:
        host, owner = agent_host(), _owner()
        view = host.take(handle.external_id, owner=owner, lease_s=LEASE_S)
        if view is None:  # ended, or another worker holds it
            return _observed(handle, host.outcome(handle.external_id))
        try:
            outcome = Slice(view, host, owner, str(handle.data.get("traceparent", ""))).run()
        except LostLease:
            return _observed(handle, None)
        except Rejected as exc:  # an unknown system, a key that does not resolve
            outcome_dict = {"state": "failed", "outputs": {}, "error": str(exc)}
            host.close(handle.external_id, owner=owner, outcome=outcome_dict)
            return _observed(handle, outcome_dict)
        if outcome is None:
            host.release(handle.external_id, owner=owner)
            return _observed(handle, None)
        host.close(handle.external_id, owner=owner, outcome=outcome.as_dict())
        return _observed(handle, outcome.as_dict())

    def cancel(self, handle: Handle) -> None:
        agent_host().close(handle.external_id, owner=None,
                           outcome={"state": "cancelled", "outputs": {},
                                    "error": "cancelled"})

    def logs(self, handle: Handle, *, cursor: str | None = None) -> LogChunk:
        return LogChunk(text="the agent's steps: `interlock agent RUN NODE`\n")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


STATES = {"succeeded": NodeState.SUCCEEDED, "failed": NodeState.FAILED,
          "cancelled": NodeState.CANCELLED}


def _observed(handle: Handle, outcome: dict[str, Any] | None) -> Observation:
    if outcome is None:
        return Observation(handle=handle, state=NodeState.RUNNING, remote_status="running")
    state = STATES.get(str(outcome.get("state")), NodeState.FAILED)
    return Observation(handle=handle, state=state, remote_status=state.value,
                       outputs=dict(outcome.get("outputs") or {}), error=outcome.get("error"))
