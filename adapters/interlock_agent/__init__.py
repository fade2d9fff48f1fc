"""`uses: agent`: a bounded AI agent as a node, every step recorded and governed
(`docs/agents.md`)."""

from interlock_agent.adapter import AgentAdapter

__all__ = ["AgentAdapter"]
