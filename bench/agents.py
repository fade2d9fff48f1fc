"""The governance path of an agent's tool call vs the model's own call.

Per tool call, Interlock evaluates the `tool` point of the policies (and audits the
decision), records the step as started, then ended with the conversation and its
`agent.step` audit record: that path is timed here through the real agent host, next to
one chat-completions request to the scripted OpenAI-compatible server of the tests
(`tests/scripted_llm.py`, real HTTP on loopback) through the adapter's own client.

Then the approval path of a gated call, without the people's wait: the call recorded as
waiting with its approval request (one transaction, audited), one approver's vote through
`operations.approvals.vote` (audited, the run woken through the outbox), and the agent's
next poll reading the decision, resuming the step and ending it.

    python bench/agents.py                       # SQLite, 200 tool calls, 10 tool rules
    python bench/agents.py --calls 500 --pg postgresql+psycopg://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULE = """  - name: rule-{i}
    when: "tool.kind == 'flow'"
    check: "tool.arguments_bytes <= {n} && agent.model in ['scripted-1'] && tool.name != 'x{i}'"
    message: rule {i}
    points: [tool]
"""
FLOW = json.dumps({"id": "agent", "namespace": "bench.agents", "nodes": {"score": {
    "uses": "agent", "with": {"system": "llm/scripted", "model": "scripted-1",
                              "prompt": "p", "tools": [{"name": "lookup",
                                                        "flow": {"namespace": "bench.agents",
                                                                 "id": "agent"}}]}}}})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rules", type=int, default=10)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL (a schema is made)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="interlock-agents-"))
    (home / "policies").mkdir()
    (home / "policies" / "bench.yaml").write_text(
        "policy: bench\nscope: '*'\nrules:\n"
        + "".join(RULE.format(i=i, n=10_000 + i) for i in range(args.rules)))
    os.environ.update({"INTERLOCK_HOME": str(home), "INTERLOCK_POLICIES": str(home / "policies"),
                       "INTERLOCK_SYSTEMS": str(home / "systems.yaml")})
    os.environ.pop("INTERLOCK_BROKER_URL", None)
    schemas = None
    if args.pg:
        from interlock.testing import pg_schema
        schemas = pg_schema(args.pg, prefix="bench_agents")
        os.environ["INTERLOCK_DATABASE_URL"] = next(schemas)
    else:
        os.environ["INTERLOCK_DATABASE_URL"] = f"sqlite:///{home / 'interlock.db'}"
    try:
        _measure(args.calls, args.rules, home)
    finally:
        if schemas is not None:
            schemas.close()


def _measure(calls: int, rules: int, home: Path) -> None:
    from interlock_agent import client, wire

    from interlock.adapters import registered
    from interlock.adapters.agents import agent_host
    from interlock.operations import runs as ops
    from interlock.operations.runtime import periodic_jobs  # noqa: F401  (installs the host)
    from interlock.store.outbox import OutboxOnly
    from tests.scripted_llm import final, serve

    with serve([final({"score": 0.1}) for _ in range(calls + 5)]) as model:
        (home / "systems.yaml").write_text(json.dumps({"systems": {"llm/scripted": {
            "url": model.base_url, "llm": {}}}}))
        flow, _ = ops.register(FLOW)
        run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs={},
                               dispatcher=OutboxOnly())
        host, key, owner = agent_host(), f"{run_id}.score.1", "bench"
        messages = [{"role": "user", "content": "p"}]
        host.open(key=key, run_id=run_id, node_id="score", attempt=1, params={},
                  messages=messages)
        assert host.take(key, owner=owner, lease_s=600) is not None
        governance: list[float] = []
        for seq in range(1, calls + 1):
            start = time.perf_counter()
            verdict = host.tool_policy(
                run_id=run_id, node_id="score",
                tool={"name": "lookup", "kind": "flow", "target": "bench.agents/agent",
                      "arguments": {"customer": "c"}, "arguments_bytes": 17,
                      "approval": "none"},
                agent={"system": "llm/scripted", "model": "scripted-1", "tool_calls": seq,
                       "model_requests": seq})
            assert verdict.allowed and verdict.decisions == rules, verdict
            assert host.begin(key, owner=owner, seq=seq, kind="tool",
                              fields={"tool": "lookup", "arguments": {"customer": "c"},
                                      "policy": {"allowed": True}})
            messages.append({"role": "tool", "tool_call_id": f"c{seq}", "content": "{}"})
            assert host.end(key, owner=owner, seq=seq, state="done",
                            fields={"result": "{}"}, messages=messages[-20:])
            governance.append(time.perf_counter() - start)
        approval = _approvals(host, key, owner, run_id, first=calls + 1, calls=calls)
        system = registered("llm/scripted", kind="llm")
        model_calls: list[float] = []
        for _ in range(calls):
            body = wire.request(model="scripted-1", messages=messages[-20:], tools=[],
                                max_tokens=None, output_schema=None)
            start = time.perf_counter()
            client.complete(system, body, timeout_s=10)
            model_calls.append(time.perf_counter() - start)
    store = os.environ["INTERLOCK_DATABASE_URL"].split(":")[0]
    gov, call = statistics.median(governance), statistics.median(model_calls)
    print(f"{os.cpu_count()} cores, store {store}, {calls} tool calls, {rules} tool rules")
    print(f"  governance per tool call (policy + audit + step write): p50 {gov * 1e3:.2f} ms,"
          f" p90 {statistics.quantiles(governance, n=10)[-1] * 1e3:.2f} ms")
    print(f"  scripted model's own call (HTTP on loopback, client side): p50 {call * 1e3:.2f} ms"
          f", server side p50 {statistics.median(model.call_ms):.2f} ms")
    print(f"  ratio governance / model call: x{gov / call:.2f}")
    for name, times in approval.items():
        print(f"  approval path, {name}: p50 {statistics.median(times) * 1e3:.2f} ms, "
              f"p90 {statistics.quantiles(times, n=10)[-1] * 1e3:.2f} ms")


def _approvals(host: Any, key: str, owner: str, run_id: str, *, first: int,
               calls: int) -> dict[str, list[float]]:
    """Each gated call: asked (step waiting + request), approved by one vote, then read,
    resumed and ended by the agent; timed in those three parts and in all."""
    from interlock.access.permissions import Role
    from interlock.adapters.agents import ToolRequest
    from interlock.operations import approvals
    from interlock.states import RunState
    from interlock.store.db import session_scope
    from interlock.store.outbox import OutboxOnly
    from interlock.store.transitions import set_run_state

    with session_scope() as session:  # votes go to running runs; nothing else runs this one
        assert set_run_state(session, run_id=run_id, expected=RunState.PENDING,
                             to=RunState.RUNNING, actor="bench")
    from interlock.access import tokens

    with session_scope() as session:  # a vote counts with who the voter is in the store
        tokens.create(session, name="alice", role=Role.APPROVER, namespace="*",
                      created_by="bench")
        alice = tokens.current(session, "alice")
    assert alice is not None
    parts: dict[str, list[float]] = {"ask": [], "vote": [], "resume and end": [], "all": []}
    request = ToolRequest(name="lookup", kind="flow", target="bench.agents/agent",
                          arguments={"customer": "c"}, rules=[])
    for seq in range(first, first + calls):
        t0 = time.perf_counter()
        request_id = host.ask(key, owner=owner, seq=seq, request=request,
                              fields={"tool": "lookup", "arguments": {"customer": "c"},
                                      "policy": {"allowed": True}})
        assert request_id is not None
        t1 = time.perf_counter()
        voted = approvals.vote(request_id, principal=alice, option="approve", inputs={},
                               comment="", dispatcher=OutboxOnly())
        assert voted["state"] == "approved", voted
        t2 = time.perf_counter()
        assert host.approval(request_id).state == "approved"
        assert host.resume(key, owner=owner, seq=seq)
        assert host.end(key, owner=owner, seq=seq, state="done", fields={"result": "{}"},
                        messages=None)
        t3 = time.perf_counter()
        for name, took in (("ask", t1 - t0), ("vote", t2 - t1), ("resume and end", t3 - t2),
                           ("all", t3 - t0)):
            parts[name].append(took)
    return parts


if __name__ == "__main__":
    main()
