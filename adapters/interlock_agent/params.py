"""`with:` of `uses: agent` (`docs/agents.md`): every value bounded, nothing reachable but
the tools declared here."""

from __future__ import annotations

import json
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from interlock.adapters import parse_duration

MAX_SCHEMA_BYTES = 16_384    # an output schema or a tool's parameters, as JSON
MAX_TOOLS = 32
TOOL_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"   # what OpenAI accepts as a function name
NAMESPACE = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$"
FLOW_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SELF_KIND = "agent"


def checked_schema(schema: dict[str, Any], what: str) -> dict[str, Any]:
    """A JSON Schema no larger than MAX_SCHEMA_BYTES that Draft 2020-12 accepts."""
    size = len(json.dumps(schema, separators=(",", ":")).encode())
    if size > MAX_SCHEMA_BYTES:
        raise ValueError(f"{what} is {size} bytes as JSON; at most {MAX_SCHEMA_BYTES}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"{what} is not a JSON Schema: {exc.message}") from None
    return schema


class Budget(BaseModel):
    """Limits counted by Interlock over every stored step of the node, all attempts."""

    model_config = ConfigDict(extra="forbid")
    model_requests: int = Field(default=20, ge=1, le=1000)
    tool_calls: int = Field(default=20, ge=0, le=1000)
    input_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    output_tokens: int | None = Field(default=None, ge=1, le=100_000_000)
    wall_time: float = Field(default=600.0, gt=0, le=7 * 86400, description="seconds, or 10m")
    cost: float | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("wall_time", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)


class FlowTool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    namespace: str = Field(pattern=NAMESPACE, max_length=200)
    id: str = Field(pattern=FLOW_ID)


class ActionTool(BaseModel):
    """An adapter call: `with:` as the flow wrote it, plus the model's arguments under one
    key (`arguments_to`, e.g. Airflow's `conf`); nothing else of the call is the model's."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    uses: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    arguments_to: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    @field_validator("uses")
    @classmethod
    def _not_itself(cls, value: str) -> str:
        if value == SELF_KIND:
            raise ValueError("an agent's action cannot be another agent")
        return value


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(default="", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    flow: FlowTool | None = None
    action: ActionTool | None = None
    approval: Literal["required", "none"] = "none"

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError("a tool's `parameters` is a JSON Schema of `type: object`")
        return checked_schema(value, "`parameters`")

    @model_validator(mode="after")
    def _one_target(self) -> Tool:
        if (self.flow is None) == (self.action is None):
            raise ValueError(f"tool `{self.name}` needs exactly one of `flow:` (start a flow "
                             "and wait for its outputs) or `action:` (an adapter call)")
        return self

    @property
    def kind(self) -> str:
        return "flow" if self.flow is not None else "action"

    @property
    def target(self) -> str:
        if self.flow is not None:
            return f"{self.flow.namespace}/{self.flow.id}"
        assert self.action is not None
        system = self.action.with_.get("system")
        return f"{self.action.uses}:{system if isinstance(system, str) else ''}"


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^llm/[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200)
    model: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=20_000)
    prompt: str = Field(min_length=1, max_length=100_000)
    output_schema: dict[str, Any] | None = None
    tools: list[Tool] = Field(default_factory=list, max_length=MAX_TOOLS)
    budget: Budget = Field(default_factory=Budget)
    capture: bool = False

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else checked_schema(value, "`output_schema`")

    @model_validator(mode="after")
    def _unique_tools(self) -> AgentParams:
        names = [t.name for t in self.tools]
        if len(names) != len(set(names)):
            raise ValueError("tool names must be unique")
        return self

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)
