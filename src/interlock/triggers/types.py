"""What started a run: the `type` of its trigger context (`runs.trigger`)."""

from __future__ import annotations

from enum import StrEnum


class TriggerType(StrEnum):
    MANUAL = "manual"      # a person, through the CLI
    API = "api"            # `POST /runs`
    SCHEDULE = "schedule"  # a `schedule:` tick (`interlock scheduler`)
    WEBHOOK = "webhook"    # a `webhook:` trigger's POST
    AFTER = "after"        # an `after:` trigger: a foreign run or another flow's run finished
    AGENT = "agent"        # a flow tool of an agent node (`docs/agents.md`)
