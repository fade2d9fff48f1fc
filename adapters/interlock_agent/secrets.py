"""Every secret value an agent node resolves (`docs/agents.md`, "What is hostile"): its
model's key, the headers and environment of its MCP servers, the credentials of the
systems its action tools reach. The loop masks all of them in what it stores (the
conversation, captured content, tool results, errors), whichever one leaked where: a
server that echoes its token, a model that repeats what a tool told it."""

from __future__ import annotations

from interlock.adapters import SecretError, SecretRef, System, UnknownSystem, load_systems
from interlock_agent.params import AgentParams, Tool


def resolved(params: AgentParams) -> list[str]:
    """The values, resolved now; one that does not resolve is left out (the call that
    needs it fails saying so, and nothing holds its value to leak)."""
    values: list[str] = []
    for system in _systems(params):
        for ref in _references(system):
            try:
                values.append(ref.resolve(system=system.name))
            except SecretError:
                continue
    return values


def _systems(params: AgentParams) -> list[System]:
    names = {params.system}
    for tool in params.tools:
        if not isinstance(tool, Tool):  # an MCP toolset not expanded yet: no values to hold
            continue
        if tool.mcp is not None:
            names.add(tool.mcp.server)
        system = tool.action.with_.get("system") if tool.action is not None else None
        if isinstance(system, str):
            names.add(system)
    found, registry = [], load_systems()
    for name in sorted(names):
        try:
            found.append(registry.get(name))
        except UnknownSystem:  # fails the call that names it
            continue
    return found


def _references(system: System) -> list[SecretRef]:
    refs = [v for v in system.headers.values() if isinstance(v, SecretRef)]
    refs += [system.auth.password] if system.auth else []
    refs += [system.llm.api_key] if system.llm and system.llm.api_key else []
    refs += [v for v in (system.mcp.env.values() if system.mcp else ())
             if isinstance(v, SecretRef)]
    return refs
