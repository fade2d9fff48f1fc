"""What the agent adapter (`uses: agent`, `docs/agents.md`) may ask of Interlock: its
session and steps in the store, the tool point of the policies, and flows to start.

Adapters import only this package, and all of these live above it, so the running parts
install the provider (`interlock.operations.agents`, when the runtime is imported), as
the store does for `observed` and `launch_once`. Every method opens its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from interlock.errors import InterlockError


@dataclass(frozen=True)
class StepView:
    """One recorded step, as the loop needs it to go on."""

    seq: int
    kind: str                         # model | tool
    state: str                        # started | done | refused | abandoned | failed
    idempotency_key: str
    tool: str | None = None
    call_id: str | None = None
    arguments: dict[str, Any] | None = None
    ref: str | None = None            # a flow tool's child run, an action's handle (JSON)
    approval_id: str | None = None    # the request a waiting (or approved) call is under


@dataclass(frozen=True)
class SessionView:
    key: str
    run_id: str
    node_id: str
    attempt: int
    params: dict[str, Any]
    messages: list[dict[str, Any]]
    started_at: datetime
    outcome: dict[str, Any] | None    # {state, outputs, error} once ended
    last: StepView | None             # the newest step of this attempt


@dataclass(frozen=True)
class Usage:
    """Sums over every stored step of the node, all attempts: what budgets are checked on."""

    model_requests: int = 0
    tool_calls: int = 0               # executed (refused calls are not counted)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0               # since the node's first attempt began


@dataclass(frozen=True)
class ToolVerdict:
    allowed: bool
    by: str | None = None             # `policy P rule R` of a denial
    message: str = ""
    decisions: int = 0                # how many rules decided (0: no policy applies)


@dataclass(frozen=True)
class ToolRequest:
    """A tool call to put to people: what they see and approve, and who may decide."""

    name: str
    kind: str                         # flow | action | mcp
    target: str
    arguments: dict[str, Any]
    rules: list[dict[str, Any]]       # QuorumRule-shaped; [] for one `approver`
    timeout_s: float | None = None


@dataclass(frozen=True)
class ApprovalView:
    id: str
    state: str                        # an ApprovalState value
    told: str = ""                    # what the model reads when the call may not run
    decided_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class FlowProgress:
    run_id: str
    finished: bool
    state: str
    outputs: dict[str, Any] = field(default_factory=dict)  # node id -> its outputs
    error: str | None = None


class AgentHost(Protocol):
    def open(self, *, key: str, run_id: str, node_id: str, attempt: int,
             params: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        """Create the attempt's session (a second call with the key changes nothing)."""

    def take(self, key: str, *, owner: str, lease_s: float) -> SessionView | None:
        """The session, leased to ``owner``; None when another holds it or it ended."""

    def release(self, key: str, *, owner: str) -> None: ...

    def begin(self, key: str, *, owner: str, seq: int, kind: str,
              fields: dict[str, Any]) -> bool:
        """Record step ``seq`` as started (the idempotency key is `<key>.s<seq>`) and renew
        the lease; False when the lease was lost or the session ended meanwhile."""

    def end(self, key: str, *, owner: str, seq: int, state: str, fields: dict[str, Any],
            messages: list[dict[str, Any]] | None) -> bool:
        """Finish step ``seq`` (and store the conversation, when given) with its audit
        record, in one transaction; False when the lease was lost."""

    def ask(self, key: str, *, owner: str, seq: int, fields: dict[str, Any],
            request: ToolRequest) -> str | None:
        """Record step ``seq`` as a tool call waiting for approval and open its request, in
        one transaction; the request's id, or None when the lease was lost."""

    def approval(self, request_id: str) -> ApprovalView:
        """The request's state (timed out here once past its deadline)."""

    def resume(self, key: str, *, owner: str, seq: int) -> bool:
        """An approved waiting step becomes `started` (it runs now); False: lease lost."""

    def approval_problem(self, rules: list[dict[str, Any]]) -> str | None:
        """Why these approval rules are not valid rules, if they are not."""

    def note(self, key: str, *, seq: int, ref: str) -> None:
        """What a started tool step is waiting on (kept for reconciliation)."""

    def usage(self, run_id: str, node_id: str) -> Usage: ...

    def close(self, key: str, *, owner: str | None, outcome: dict[str, Any]) -> bool:
        """End the session (owner None: whoever holds it, for a cancel)."""

    def outcome(self, key: str) -> dict[str, Any] | None: ...

    def tool_policy(self, *, run_id: str, node_id: str, tool: dict[str, Any],
                    agent: dict[str, Any]) -> ToolVerdict:
        """The `tool` point of the namespace's policies; decisions audited."""

    def start_flow(self, *, key: str, namespace: str, flow_id: str, inputs: dict[str, Any],
                   parent: dict[str, Any]) -> str:
        """Start the flow once per ``key`` (a second call returns the first run's id)."""

    def flow_progress(self, run_id: str) -> FlowProgress: ...


_provider: AgentHost | None = None


def provide(host: AgentHost) -> None:
    global _provider
    _provider = host


def agent_host() -> AgentHost:
    if _provider is None:
        raise InterlockError("no agent host is installed: import interlock.operations.runtime "
                             "before running agent nodes")
    return _provider
