"""The agent host (`interlock.adapters.agents.AgentHost`): what `uses: agent` asks of the
store, the policies and the flows, each in its own transaction. Installed on import (the
runtime imports it), and the trail for the API and the CLI (`agent_trail`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel

from interlock.access.permissions import Permission
from interlock.adapters import agents as sdk
from interlock.approvals import tools as tool_approvals
from interlock.errors import NotFound
from interlock.operations import runs as run_ops
from interlock.operations.runs import Guard
from interlock.policies import points
from interlock.states import RUN_TERMINAL, NodeState
from interlock.store import agents as store
from interlock.store import audit, facts
from interlock.store.db import session_scope
from interlock.store.flows import flow_of_run
from interlock.store.outbox import carrier
from interlock.store.tables import (
    AgentSession,
    AgentStep,
    ApprovalRequest,
    Run,
    StepKind,
    StepState,
)
from interlock.triggers.types import TriggerType

ACTOR = "agent"


def _actor(run_id: str, node_id: str) -> str:
    return f"agent:{run_id}/{node_id}"


def _view(session: Any, s: AgentSession) -> sdk.SessionView:
    last = store.last_step(session, s)
    step = None if last is None else sdk.StepView(
        seq=last.seq, kind=last.kind, state=last.state, idempotency_key=last.idempotency_key,
        tool=last.tool, call_id=last.call_id, arguments=last.arguments, ref=last.ref,
        approval_id=last.approval_id)
    return sdk.SessionView(key=s.key, run_id=s.run_id, node_id=s.node_id, attempt=s.attempt,
                           params=s.params, messages=list(s.messages),
                           started_at=s.started_at, outcome=s.outcome, last=step)


def _audit_step(session: Any, step: AgentStep) -> None:
    """One record per finished step: facts, never the content (hashes stand for it)."""
    after = {"attempt": step.attempt, "seq": step.seq, "kind": step.kind, "state": step.state,
             "key": step.idempotency_key, "duration_ms": step.duration_ms}
    if step.kind == StepKind.MODEL.value:
        after |= {"model": step.model, "input_tokens": step.input_tokens,
                  "output_tokens": step.output_tokens, "finish_reason": step.finish_reason,
                  "latency_ms": step.latency_ms, "messages_sha256": step.messages_sha256}
    else:
        after |= {"tool": step.tool, "arguments_sha256": _sha(step.arguments),
                  "policy": step.policy, "approval_id": step.approval_id,
                  "result_sha256": _sha(step.result), "ref": step.ref}
    if step.error:
        after["error"] = facts.short(step.error)
    if step.approval_id:  # the decision people made on this call
        row = session.get(ApprovalRequest, step.approval_id)
        if row is not None:
            after["approval"] = {"id": row.id, "state": row.state,
                                 "decided_by": row.decided_by,
                                 "payload_hash": row.payload_hash}
    audit.record(session, actor=_actor(step.run_id, step.node_id),
                 action=audit.Action.AGENT_STEP,
                 target=f"runs/{step.run_id}/nodes/{step.node_id}", origin=audit.LOCAL_ORIGIN,
                 after=after)


def _sha(value: Any) -> str | None:
    if value is None:
        return None
    body = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class Host:
    """The store-backed `AgentHost`. Each write renews the holder's lease by as long as it
    took it for (owners are one poll's token, so this process knows them)."""

    def __init__(self) -> None:
        self._leases: dict[tuple[str, str], float] = {}

    def open(self, *, key: str, run_id: str, node_id: str, attempt: int,
             params: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        with session_scope() as session:
            store.open_session(session, key=key, run_id=run_id, node_id=node_id,
                               attempt=attempt, params=params, messages=messages)

    def take(self, key: str, *, owner: str, lease_s: float) -> sdk.SessionView | None:
        with session_scope() as session:
            s = store.take(session, key, owner=owner, lease_s=lease_s)
            if s is None:
                return None
            self._leases[(key, owner)] = lease_s
            return _view(session, s)

    def release(self, key: str, *, owner: str) -> None:
        self._leases.pop((key, owner), None)
        with session_scope() as session:
            store.release(session, key, owner)

    def begin(self, key: str, *, owner: str, seq: int, kind: str,
              fields: dict[str, Any]) -> bool:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            if s is None or not store.held(session, key, owner, renew_s=self._renew(key, owner)):
                return False
            return store.begin_step(session, s, seq=seq, kind=StepKind(kind),
                                    fields=fields) is not None

    def end(self, key: str, *, owner: str, seq: int, state: str, fields: dict[str, Any],
            messages: list[dict[str, Any]] | None) -> bool:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            if s is None or not store.held(session, key, owner, renew_s=self._renew(key, owner)):
                return False
            step = store.step_of(session, s, seq)
            if step is None or step.state not in (StepState.STARTED.value,
                                                  StepState.WAITING.value):
                return False
            if step.state == StepState.WAITING.value:  # refused by people: the wait is over
                tool_approvals.shown_done(session, s.run_id, s.node_id, s.attempt)
            asked = session.get(ApprovalRequest, step.approval_id) if step.approval_id else None
            store.end_step(step, state=StepState(state), fields=fields,
                           ran_from=asked.decided_at if asked is not None else None)
            if messages is not None:
                s.messages = messages
            _audit_step(session, step)
            return True

    def ask(self, key: str, *, owner: str, seq: int, fields: dict[str, Any],
            request: sdk.ToolRequest) -> str | None:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            if s is None or not store.held(session, key, owner, renew_s=self._renew(key, owner)):
                return None
            step = store.begin_step(session, s, seq=seq, kind=StepKind.TOOL, fields=fields,
                                    state=StepState.WAITING)
            if step is None:
                return None
            row = tool_approvals.open_request(
                session, run_id=s.run_id, node_id=s.node_id, attempt=s.attempt,
                step_key=step.idempotency_key,
                tool={"name": request.name, "kind": request.kind, "target": request.target,
                      "arguments": request.arguments},
                rules=request.rules, timeout_s=request.timeout_s)
            step.approval_id = row.id
            return row.id

    def approval(self, request_id: str) -> sdk.ApprovalView:
        with session_scope() as session:
            row = tool_approvals.look(session, request_id)
            if row is None:
                return sdk.ApprovalView(id=request_id, state="cancelled",
                                        told="the approval request is gone; the call did "
                                             "not run")
            return sdk.ApprovalView(id=row.id, state=row.state,
                                    told=tool_approvals.told(session, row),
                                    decided_by=tuple(row.decided_by))

    def resume(self, key: str, *, owner: str, seq: int) -> bool:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            if s is None or not store.held(session, key, owner, renew_s=self._renew(key, owner)):
                return False
            step = store.step_of(session, s, seq)
            if step is None or step.state != StepState.WAITING.value:
                return step is not None and step.state == StepState.STARTED.value
            store.resume_step(step)
            tool_approvals.shown_done(session, s.run_id, s.node_id, s.attempt)
            return True

    def approval_problem(self, rules: list[dict[str, Any]]) -> str | None:
        return tool_approvals.rules_problem(rules)

    def note(self, key: str, *, seq: int, ref: str) -> None:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            step = None if s is None else store.step_of(session, s, seq)
            if step is not None:
                step.ref = ref

    def usage(self, run_id: str, node_id: str) -> sdk.Usage:
        with session_scope() as session:
            return sdk.Usage(**store.usage(session, run_id, node_id))

    def _renew(self, key: str, owner: str) -> float:
        return self._leases.get((key, owner), LEASE_RENEW_S)

    def close(self, key: str, *, owner: str | None, outcome: dict[str, Any]) -> bool:
        if owner is not None:
            self._leases.pop((key, owner), None)
        with session_scope() as session:
            closed = store.close(session, key, owner=owner, outcome=outcome)
            s = session.get(AgentSession, key)
            if closed and s is not None:  # a call still waiting will never run
                tool_approvals.cancel_open(session, run_id=s.run_id, node_id=s.node_id,
                                           attempt=s.attempt,
                                           reason=f"the agent ended {outcome.get('state')}")
            return closed

    def outcome(self, key: str) -> dict[str, Any] | None:
        with session_scope() as session:
            s = session.get(AgentSession, key)
            return None if s is None else s.outcome

    def tool_policy(self, *, run_id: str, node_id: str, tool: dict[str, Any],
                    agent: dict[str, Any]) -> sdk.ToolVerdict:
        with session_scope() as session:
            run = session.get(Run, run_id)
            if run is None:
                return sdk.ToolVerdict(allowed=False, message=f"run {run_id} is gone")
            flow = flow_of_run(session, run)
            made = points.at_tool(session, flow, node_id=node_id, run_id=run_id,
                                  actor=_actor(run_id, node_id), tool=tool, agent=agent)
            return sdk.ToolVerdict(allowed=made.allowed, by=made.by, message=made.message,
                                   decisions=made.decisions)

    def start_flow(self, *, key: str, namespace: str, flow_id: str, inputs: dict[str, Any],
                   parent: dict[str, Any]) -> str:
        actor = _actor(parent["run_id"], parent["node_id"])
        trigger = {"type": TriggerType.AGENT.value, "by": actor, "agent": actor,
                   "run_id": parent["run_id"], "node_id": parent["node_id"], "step": key}
        run_id, _ = run_ops.start_once(namespace=namespace, flow_id=flow_id, inputs=inputs,
                                       dispatcher=carrier(), trigger=trigger, actor=actor,
                                       idempotency_key=key)
        return run_id

    def flow_progress(self, run_id: str) -> sdk.FlowProgress:
        detail = run_ops.get_run(run_id)
        finished = detail.state in RUN_TERMINAL
        outputs = {n.id: n.outputs for n in detail.nodes if n.state is NodeState.SUCCEEDED}
        errors = [f"{n.id}: {n.error}" for n in detail.nodes if n.error]
        return sdk.FlowProgress(run_id=run_id, finished=finished, state=detail.state.value,
                                outputs=outputs, error="; ".join(errors) or None)


LEASE_RENEW_S = 120.0  # a holder this process did not see take the lease renews by this

sdk.provide(Host())


class AgentStepPublic(BaseModel):
    attempt: int
    seq: int
    kind: str
    state: str
    idempotency_key: str
    started_at: Any
    ended_at: Any
    duration_ms: float | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    finish_reason: str | None
    latency_ms: float | None
    messages_sha256: str | None
    content: dict[str, Any] | None
    tool: str | None
    arguments: dict[str, Any] | None
    policy: dict[str, Any] | None
    approval_id: str | None
    ref: str | None
    result: str | None
    error: str | None


class AgentTrail(BaseModel):
    run_id: str
    node_id: str
    usage: dict[str, Any]
    outcome: dict[str, Any] | None
    steps: list[AgentStepPublic]
    content_hidden: bool = False  # arguments, results and content left out: no outputs:read


def agent_trail(run_id: str, node_id: str, *, guard: Guard | None = None) -> AgentTrail:
    """Every step of an agent node, all attempts, oldest first; NotFound when the node ran
    no agent."""
    with session_scope() as session:
        run_ops._guard(session, run_id, guard)
        rows = store.steps(session, run_id, node_id)
        sessions = store.sessions(session, run_id, node_id)
        if not sessions:
            raise NotFound(f"node `{node_id}` of run `{run_id}` ran no agent")
        steps = [AgentStepPublic.model_validate(r, from_attributes=True) for r in rows]
        namespace = session.get(Run, run_id).namespace  # type: ignore[union-attr]
        hidden = guard is not None and not guard.allows(Permission.OUTPUTS_READ, namespace)
        if hidden:  # what the model and the tools said is as sensitive as outputs
            steps = [s.model_copy(update={"arguments": None, "result": None, "content": None})
                     for s in steps]
        outcome = sessions[-1].outcome
        if hidden and outcome is not None:
            outcome = {**outcome, "outputs": {}}
        return AgentTrail(run_id=run_id, node_id=node_id,
                          usage=store.usage(session, run_id, node_id),
                          outcome=outcome, steps=steps, content_hidden=hidden)
