"""The agent loop, one step at a time (`docs/agents.md`). `Slice.run` holds the session's
lease and takes steps until it must wait (a tool still running) or the node ends; each
step is recorded as started before its work and as ended (with the conversation) before
the next begins, so any worker can pick the session up where it stopped."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from interlock.adapters import Rejected, Transient, registered
from interlock.adapters.agents import AgentHost, SessionView, StepView, ToolRequest
from interlock.adapters.masking import Masker
from interlock_agent import budget, client, secrets, tools, wire
from interlock_agent.answer import final_outputs
from interlock_agent.governance import Verdict, govern
from interlock_agent.outcome import WAIT, Outcome
from interlock_agent.params import AgentParams

SLICE_S = 20.0      # a poll gives the agent this long before handing the worker back
MAX_TIMEOUT_S = 300.0


class Slice:
    def __init__(self, view: SessionView, host: AgentHost, owner: str, traceparent: str):
        self.view, self.host, self.owner, self.traceparent = view, host, owner, traceparent
        self.params = AgentParams.model_validate(view.params)
        self.messages = list(view.messages)
        self.last: StepView | None = view.last
        self.seq = view.last.seq if view.last else 0
        self.system = registered(self.params.system, kind="llm")
        key = self.system.llm_settings.api_key
        if key is not None:  # a key that does not resolve fails the node here
            key.resolve(system=self.system.name)
        self.mask = Masker(secrets.resolved(self.params))  # every secret the node may meet

    def run(self) -> Outcome | None:
        """The node's outcome, or None when it must wait for the next poll."""
        ends = time.monotonic() + SLICE_S
        while time.monotonic() < ends:
            done = self.step()
            if done is WAIT:
                return None
            if isinstance(done, Outcome):
                return done
        return None

    def step(self) -> Outcome | str | None:
        last = self.last
        if last is not None and last.state == "waiting":  # parked for people's approval
            return self._waiting(last)
        if last is not None and last.state == "started":
            if last.kind == "model":  # a request a dead worker sent: no effect, ask again
                self._end(last.seq, "abandoned", {"error": "its worker stopped; asked again"})
                return None
            return self._tool(last)
        pending = _pending_calls(self.messages)
        if pending:
            return self._govern(pending[0])
        final = self.messages[-1] if self.messages[-1].get("role") == "assistant" else None
        if final is not None:
            return final_outputs(final.get("content"), self.params, self.host.usage(
                self.view.run_id, self.view.node_id))
        return self._model()

    # -- model requests -------------------------------------------------------------------

    def _model(self) -> Outcome | None:
        used = self.host.usage(self.view.run_id, self.view.node_id)
        if (over := budget.before_model(self.params.budget, used)) is not None:
            return Outcome("failed", error=over)
        body = wire.request(model=self.params.model, messages=self.messages,
                            tools=[wire.tool_entry(t.name, t.description, t.parameters)
                                   for t in self.params.tools],
                            max_tokens=budget.max_tokens(self.params.budget, used),
                            output_schema=self.params.output_schema)
        digest = hashlib.sha256(json.dumps(self.messages, sort_keys=True).encode()).hexdigest()
        seq = self._begin("model", {"model": self.params.model, "messages_sha256": digest})
        timeout = min(self.system.timeout, MAX_TIMEOUT_S,
                      max(1.0, self.params.budget.wall_time - used.wall_s))
        try:
            answer = client.complete(self.system, body, timeout_s=timeout)
        except Transient as exc:  # asked again at the next poll; wall_time bounds the tries
            self._end(seq, "abandoned", {"error": self.mask.text(str(exc))})
            return WAIT  # type: ignore[return-value]
        except Rejected as exc:
            error = self.mask.text(str(exc))
            self._end(seq, "failed", {"error": error})
            return Outcome("failed", error=f"model request {seq}: {error}")
        return self._answered(seq, answer)

    def _answered(self, seq: int, answer: client.Answer) -> Outcome | None:
        reply = answer.reply
        price = self.system.llm_settings.price
        cost = 0.0 if price is None else (reply.input_tokens * price.input_per_1k
                                          + reply.output_tokens * price.output_per_1k) / 1000
        fields: dict[str, Any] = {
            "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
            "cost": cost, "finish_reason": reply.finish_reason,
            "latency_ms": answer.latency_ms}
        said = self.mask.deep(reply.message())  # a secret the model repeats is not kept
        if self.params.capture:
            fields["content"] = self.mask.deep({"sent": self.messages[-2:], "reply": said})
        self.messages.append(said)
        self._end(seq, "done", fields, messages=self.messages)
        used = self.host.usage(self.view.run_id, self.view.node_id)
        over = budget.after_model(self.params.budget, used)
        return None if over is None else Outcome("failed", error=over)

    # -- tool calls -----------------------------------------------------------------------

    def _govern(self, call: wire.ToolCall) -> Outcome | str | None:
        used = self.host.usage(self.view.run_id, self.view.node_id)
        verdict = govern(call, self.params, host=self.host, run_id=self.view.run_id,
                         node_id=self.view.node_id, used=used)
        fields = {"tool": call.name[:128], "call_id": call.id, "arguments":
                  verdict.arguments, "policy": verdict.policy}
        if verdict.refused is not None:
            seq = self._begin("tool", fields)
            self._answer_tool(seq, call.id, verdict.refused, "refused")
            return None
        if (over := budget.before_tool(self.params.budget, used)) is not None:
            return Outcome("failed", error=over)  # people are not asked for a call it cannot make
        if verdict.approval is not None:
            return self._ask(call, verdict, fields)
        seq = self._begin("tool", fields)  # recorded (with its key) before it runs
        self.last = StepView(seq=seq, kind="tool", state="started",
                             idempotency_key=f"{self.view.key}.s{seq}", tool=call.name,
                             call_id=call.id, arguments=verdict.arguments)
        return self._tool(self.last)

    # -- approval -------------------------------------------------------------------------

    def _ask(self, call: wire.ToolCall, verdict: Verdict, fields: dict[str, Any]) -> str:
        """Record the call as waiting with its request (one transaction), then park."""
        assert verdict.tool is not None and verdict.approval is not None
        tool, seq = verdict.tool, self.seq + 1
        request = ToolRequest(name=tool.name, kind=tool.kind, target=tool.target,
                              arguments=verdict.arguments or {},
                              rules=verdict.approval.rules, timeout_s=verdict.approval.timeout)
        approval_id = self.host.ask(self.view.key, owner=self.owner, seq=seq, fields=fields,
                                    request=request)
        if approval_id is None:
            raise LostLease(f"step {seq} of {self.view.key}")
        self.seq = seq
        self.last = StepView(seq=seq, kind="tool", state="waiting",
                             idempotency_key=f"{self.view.key}.s{seq}", tool=tool.name,
                             call_id=call.id, arguments=verdict.arguments,
                             approval_id=approval_id)
        return WAIT

    def _waiting(self, step: StepView) -> Outcome | str | None:
        """A parked call: only its request is read. Approved: budgets again (the pause
        counted), then it runs once under the step's key; otherwise the model is told."""
        assert step.approval_id is not None
        seen = self.host.approval(step.approval_id)
        used = self.host.usage(self.view.run_id, self.view.node_id)
        if seen.state == "pending":
            over = budget.wall(self.params.budget, used)
            return WAIT if over is None else Outcome("failed", error=over)
        if seen.state != "approved":
            self._answer_tool(step.seq, step.call_id or "", seen.told, "refused")
            return None
        if (over := budget.before_tool(self.params.budget, used)) is not None:
            return Outcome("failed", error=over)
        if not self.host.resume(self.view.key, owner=self.owner, seq=step.seq):
            raise LostLease(f"step {step.seq} of {self.view.key}")
        self.last = StepView(seq=step.seq, kind="tool", state="started",
                             idempotency_key=step.idempotency_key, tool=step.tool,
                             call_id=step.call_id, arguments=step.arguments,
                             approval_id=step.approval_id)
        return self._tool(self.last)

    def _tool(self, step: StepView) -> Outcome | str | None:
        tool = self.params.tool(step.tool or "")
        assert tool is not None  # governed before it was recorded as started
        started = time.monotonic()
        progress = tools.advance(tool, step.arguments or {}, key=step.idempotency_key,
                                 ref=step.ref, host=self.host, run_id=self.view.run_id,
                                 node_id=self.view.node_id, attempt=self.view.attempt,
                                 traceparent=self.traceparent)
        if not progress.done:
            if progress.ref and progress.ref != step.ref:
                self.host.note(self.view.key, seq=step.seq, ref=progress.ref)
            if (over := budget.wall(self.params.budget, self.host.usage(
                    self.view.run_id, self.view.node_id))) is not None:
                return Outcome("failed", error=over)
            return WAIT
        extra = {"ref": progress.ref, "error": progress.error,
                 "duration_ms": None if step.ref else (time.monotonic() - started) * 1000}
        self._answer_tool(step.seq, step.call_id or "", self.mask.text(progress.result),
                          "done", extra)
        return None

    def _answer_tool(self, seq: int, call_id: str, text: str, state: str,
                     extra: dict[str, Any] | None = None) -> None:
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
        self._end(seq, state, {"result": text, **(extra or {})}, messages=self.messages)

    # -- the record -----------------------------------------------------------------------

    def _begin(self, kind: str, fields: dict[str, Any]) -> int:
        seq = self.seq + 1
        if not self.host.begin(self.view.key, owner=self.owner, seq=seq, kind=kind,
                               fields=fields):
            raise LostLease(f"step {seq} of {self.view.key}")
        self.seq = seq
        self.last = StepView(seq=seq, kind=kind, state="started",
                             idempotency_key=f"{self.view.key}.s{seq}")
        return seq

    def _end(self, seq: int, state: str, fields: dict[str, Any],
             messages: list[dict[str, Any]] | None = None) -> None:
        if not self.host.end(self.view.key, owner=self.owner, seq=seq, state=state,
                             fields=fields, messages=messages):
            raise LostLease(f"step {seq} of {self.view.key}")
        self.last = StepView(seq=seq, kind=self.last.kind if self.last else "model",
                             state=state, idempotency_key=f"{self.view.key}.s{seq}")


class LostLease(Transient):
    """Another worker holds the session now (ours ran out): stop, it goes on."""


def _pending_calls(messages: list[dict[str, Any]]) -> list[wire.ToolCall]:
    """Tool calls of the newest assistant message that no tool message answered yet."""
    for n in range(len(messages) - 1, -1, -1):
        if messages[n].get("role") == "assistant":
            answered = {m.get("tool_call_id") for m in messages[n + 1:]}
            return [wire.ToolCall(id=c["id"], name=c["function"]["name"],
                                  arguments=c["function"]["arguments"])
                    for c in messages[n].get("tool_calls") or [] if c["id"] not in answered]
    return []
