"""`with:` of `uses: agent` (`docs/agents.md`): every value bounded, nothing reachable but
the tools declared here."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from interlock.adapters import parse_duration
from interlock_agent.approval import Approval

MAX_SCHEMA_BYTES = 16_384    # an output schema or a tool's parameters, as JSON
MAX_TOOLS = 32
TOOL_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"   # what OpenAI accepts as a function name
NAMESPACE = r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$"
FLOW_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SELF_KIND = "agent"
MCP_SERVER = r"^mcp/[A-Za-z0-9][A-Za-z0-9_.-]*$"   # a registered `mcp/<name>` system


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


class McpServerTools(BaseModel):
    """`- mcp: {server: mcp/kyc, tools: [...], read_only: [...]}` as the flow writes it:
    which of a registered server's tools the model may call. Expanded into one `Tool` each
    when the session starts (`mcp_tools.expand`), from the server's own list. Every tool
    not vouched read-only gets `approval` (by default `required`)."""

    model_config = ConfigDict(extra="forbid")
    server: str = Field(pattern=MCP_SERVER, max_length=200)
    tools: list[Annotated[str, Field(pattern=TOOL_NAME)]] = Field(min_length=1,
                                                                  max_length=MAX_TOOLS)
    read_only: list[str] = Field(default_factory=list, max_length=MAX_TOOLS)
    approval: Approval = "required"

    @model_validator(mode="after")
    def _read_only_listed(self) -> McpServerTools:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError(f"{self.server}: a tool is listed twice")
        if stray := sorted(set(self.read_only) - set(self.tools)):
            raise ValueError(f"{self.server}: `read_only` names {', '.join(stray)}, which "
                             "`tools` does not list")
        if self.approval == "none":
            raise ValueError(f"{self.server}: `approval: none` is not for MCP tools; list "
                             "the tools that change nothing under `read_only:`")
        return self


class McpToolset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mcp: McpServerTools


class McpTarget(BaseModel):
    """An expanded MCP tool: its server, its name there, the SHA-256 of the description
    and input schema it had when the session started (each call checks it again), and
    who vouched that it is read-only (None: nobody, so it needs approval)."""

    model_config = ConfigDict(extra="forbid")
    server: str = Field(pattern=MCP_SERVER, max_length=200)
    tool: str = Field(pattern=TOOL_NAME)
    schema_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    read_only_by: Literal["flow", "system", "trusted-server"] | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(default="", max_length=2000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    flow: FlowTool | None = None
    action: ActionTool | None = None
    mcp: McpTarget | None = None    # only as `mcp_tools.expand` writes it
    approval: Approval = "none"  # `interlock_agent.approval`

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type") != "object":
            raise ValueError("a tool's `parameters` is a JSON Schema of `type: object`")
        return checked_schema(value, "`parameters`")

    @model_validator(mode="after")
    def _one_target(self) -> Tool:
        if [self.flow, self.action, self.mcp].count(None) != 2:
            raise ValueError(f"tool `{self.name}` needs exactly one of `flow:` (start a flow "
                             "and wait for its outputs) or `action:` (an adapter call); "
                             "MCP tools are listed as `- mcp: {server: mcp/<name>, tools: "
                             "[...]}`")
        return self

    @property
    def kind(self) -> str:
        return "flow" if self.flow else "action" if self.action else "mcp"

    @property
    def target(self) -> str:
        if self.flow is not None:
            return f"{self.flow.namespace}/{self.flow.id}"
        if self.mcp is not None:
            return f"{self.mcp.server}:{self.mcp.tool}"
        assert self.action is not None
        system = self.action.with_.get("system")
        return f"{self.action.uses}:{system if isinstance(system, str) else ''}"


def _entry_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "mcp" if "mcp" in value and "name" not in value else "tool"
    return "mcp" if isinstance(value, McpToolset) else "tool"


ToolEntry = Annotated[Annotated[Tool, Tag("tool")] | Annotated[McpToolset, Tag("mcp")],
                      Discriminator(_entry_kind)]


class AgentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str = Field(pattern=r"^llm/[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=200)
    model: str = Field(min_length=1, max_length=200)
    instructions: str = Field(default="", max_length=20_000)
    prompt: str = Field(min_length=1, max_length=100_000)
    output_schema: dict[str, Any] | None = None
    tools: list[ToolEntry] = Field(default_factory=list, max_length=MAX_TOOLS)
    budget: Budget = Field(default_factory=Budget)
    capture: bool = False

    @field_validator("output_schema")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else checked_schema(value, "`output_schema`")

    @model_validator(mode="after")
    def _unique_tools(self) -> AgentParams:
        names = [t.name for t in self.tools if isinstance(t, Tool)]
        names += [n for s in self.tools if isinstance(s, McpToolset) for n in s.mcp.tools]
        if len(names) != len(set(names)):
            raise ValueError("tool names must be unique (MCP tools are offered under their "
                             "own names)")
        return self

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if isinstance(t, Tool) and t.name == name), None)

    def toolsets(self) -> list[McpServerTools]:
        """The MCP servers' allow-lists not expanded yet (none once the session started)."""
        return [s.mcp for s in self.tools if isinstance(s, McpToolset)]
