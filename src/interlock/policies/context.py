"""What a rule sees: plain maps (CEL's maps and lists), built from the flow document, the
systems file, the run and the principal. `docs/policies.md` lists every field.

    flow      {id, namespace, ref, labels, description, concurrency {limit, behavior} | null}
    node      {id, uses, adapter, system, timeout, retry {attempts, mode}, needs, params,
               approval {people, rules, timeout, on_timeout} | null}
    system    {name, kind, labels}            ({"name": "", ...} for a node on no system)
    run       {inputs, trigger}               (start and submit)
    principal {actor, kind, groups}           (who registers, starts, or started the run)
    now       timestamp;  point  "register" | "start" | "submit" | "tool"
    tool      {name, kind, target, arguments, arguments_bytes, approval}   (point tool)
    agent     {system, model, tool_calls, model_requests}                  (point tool)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from interlock.config.systems import Systems, load_systems
from interlock.spec.models import Flow, Node

SYSTEM_KEY = "system"  # the `with:` key naming a node's registered system
NO_SYSTEM: dict[str, Any] = {"name": "", "kind": "", "labels": {}}


def flow_context(flow: Flow) -> dict[str, Any]:
    limit = flow.concurrency
    return {"id": flow.id, "namespace": flow.namespace, "ref": flow.ref,
            "labels": dict(flow.labels), "description": flow.description,
            "concurrency": None if limit is None else {"limit": limit.limit,
                                                       "behavior": limit.behavior.value}}


def node_context(node_id: str, node: Node) -> dict[str, Any]:
    gate = node.approval
    approval = None if gate is None else {
        "people": sum(rule.count for rule in gate.rules), "rules": len(gate.rules),
        "timeout": gate.timeout, "on_timeout": gate.on_timeout.value}
    system = node.with_.get(SYSTEM_KEY)
    return {"id": node_id, "uses": node.uses, "adapter": node.uses,
            "system": system if isinstance(system, str) else "",
            "timeout": node.timeout, "needs": list(node.needs), "params": node.with_,
            "retry": {"attempts": node.retry.attempts, "mode": node.retry.mode.value},
            "approval": approval}


def system_context(name: str, systems: Systems | None = None) -> dict[str, Any]:
    systems = systems or load_systems()
    if not name or name not in systems:
        return {**NO_SYSTEM, "name": name}
    system = systems.get(name)
    return {"name": system.name, "kind": system.kind, "labels": dict(system.labels)}


def principal_context(actor: str, groups: tuple[str, ...] = ()) -> dict[str, Any]:
    kind, _, _ = actor.partition(":")
    return {"actor": actor, "kind": kind, "groups": list(groups)}


def base(flow: Flow, *, point: str, now: datetime, actor: str,
         run: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"flow": flow_context(flow), "principal": principal_context(actor), "now": now,
            "point": point, "run": run or {"inputs": {}, "trigger": {}},
            "node": None, "system": NO_SYSTEM, "tool": None, "agent": None}
