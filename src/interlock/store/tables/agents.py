"""Agent nodes (`uses: agent`, `docs/agents.md`): one session per attempt, holding the
conversation so any worker can resume it, and one row per step (a model request or a tool
call), written before the next step starts. Budgets are sums over the steps."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from interlock.store.base import Base


class StepKind(StrEnum):
    MODEL = "model"  # one chat-completions request
    TOOL = "tool"    # one tool call the model asked for


class StepState(StrEnum):
    WAITING = "waiting"      # a tool call waiting for people's approval: not executed yet
    STARTED = "started"      # recorded before the work; left so by a dead worker: reconciled
    DONE = "done"            # finished (a tool's own failure is told to the model: still done)
    REFUSED = "refused"      # not executed: not on the allow-list, bad arguments, policy
    ABANDONED = "abandoned"  # a model request a dead worker left: asked again (no effect)
    FAILED = "failed"        # ended the node (garbage from the model, an unreachable server)


class AgentSession(Base):
    """The loop's state for one attempt: its validated `with:`, the conversation, who holds
    it now (a lease, so two pollers never run one agent at once) and how it ended."""

    __tablename__ = "agent_sessions"
    __table_args__ = (Index("ix_agent_sessions_node", "run_id", "node_id"),)

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # the attempt's key
    run_id: Mapped[str] = mapped_column(String(40))  # no foreign key: retention purges runs
    node_id: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]]                   # the node's `with:`, validated
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # the conversation
    owner: Mapped[str | None] = mapped_column(String(200))        # host:pid:token
    lease_until: Mapped[datetime | None]
    started_at: Mapped[datetime]
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {state, outputs, error}
    ended_at: Mapped[datetime | None]


class AgentStep(Base):
    __tablename__ = "agent_steps"
    __table_args__ = (UniqueConstraint("run_id", "node_id", "attempt", "seq"),
                      UniqueConstraint("idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(40))
    node_id: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)                 # 1, 2, ... within the attempt
    kind: Mapped[str] = mapped_column(String(8))              # StepKind
    state: Mapped[str] = mapped_column(String(12))            # StepState
    idempotency_key: Mapped[str] = mapped_column(String(240))  # <attempt key>.s<seq>
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None] = mapped_column(Float)
    # A model request.
    model: Mapped[str | None] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    messages_sha256: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # only with `capture: true`
    # A tool call.
    tool: Mapped[str | None] = mapped_column(String(128))
    call_id: Mapped[str | None] = mapped_column(String(128))  # the model's id for the call
    arguments: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # bounded
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)     # {allowed, by, message}
    approval_id: Mapped[str | None] = mapped_column(String(40))
    ref: Mapped[str | None] = mapped_column(String(2000))  # the child run id, the action's handle
    result: Mapped[str | None] = mapped_column(Text)       # what the model was told, bounded
    error: Mapped[str | None] = mapped_column(Text)
