"""The compliance agent example (`examples/compliance-agent/`) end to end on the embedded
dispatcher, SQLite and PostgreSQL, with the scripted model server standing in for the
local one: identity and sanctions scripts, the agent asks to freeze the account, two
compliance officers approve through the API, the freeze runs once, the answer is validated,
the notification runs; the trace shows the agent's steps and the audit chain verifies.

`INTERLOCK_EXAMPLE_TRACE=path` writes the trace tree to ``path`` (how the README's was
made)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.api.main import create_app
from interlock.audit import query as audit_query
from interlock.cli.main import app
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations import agents as agent_ops
from interlock.operations import runs as ops
from interlock.states import RunState
from interlock.store.db import session_scope
from tests.agent_trail import assert_trail_complete
from tests.helpers import bearer, wait_run
from tests.scripted_llm import final, serve, tool_calls
from tests.test_agents_approval import children, pending_request, vote

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "compliance-agent"
ANSWER = {"score": 0.92, "reason": "passport does not match the name; funds from a shell "
                                   "company named in the documents"}


@pytest.fixture
def local_model(store_url: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The scripted server registered as the example's `llm/local` (no key: local)."""
    script = [tool_calls(("freeze_account", {"customer_id": "C-1042",
                                             "reason": "identity mismatch, shell company"})),
              final(ANSWER, prompt_tokens=310, completion_tokens=41)]
    with serve(script) as model:
        path = tmp_path / "systems.yaml"
        path.write_text(json.dumps({"systems": {"llm/local": {
            "url": model.base_url, "timeout": 30, "llm": {"models": ["smollm2-135m"]}}}}))
        monkeypatch.setenv("INTERLOCK_SYSTEMS", str(path))
        settings.cache_clear()
        yield model


def officer(name: str) -> dict[str, str]:
    with session_scope() as session:
        made, _ = tokens.create(session, name=name, role=Role.APPROVER,
                                namespace="bank.*", created_by="tests",
                                groups=("compliance",))
    return {"Authorization": f"Bearer {made}"}


def test_the_compliance_agent_example_end_to_end(embedded: EmbeddedDispatcher,
                                                 local_model: Any, tmp_path: Path) -> None:
    ops.register((EXAMPLE / "freeze-account.yaml").read_text())
    flow, _ = ops.register((EXAMPLE / "flow.yaml").read_text())
    started = time.monotonic()
    run_id = ops.start_run(
        namespace=flow.namespace, flow_id=flow.id, dispatcher=embedded,
        trigger={"type": "manual", "by": "user:analyst"},
        inputs={"customer_id": "C-1042", "name": "Jane Roe", "iban": "FR7630006000011234567890189",
                "documents": "Passport scan in the name of J. Doe; salary paid by Acme Shell "
                             "Holdings (Cayman)."})
    row = pending_request(run_id)
    assert row.payload["arguments"] == {"customer_id": "C-1042",
                                        "reason": "identity mismatch, shell company"}
    with TestClient(create_app(embedded)) as client:
        not_compliance = bearer(Role.APPROVER, "bank.*", name="rita")
        assert vote(client, row.id, not_compliance).status_code == 403  # not in the group
        assert vote(client, row.id, officer("cleo"), comment="documents do not match")\
            .status_code == 200
        assert vote(client, row.id, officer("omar"), comment="agreed").status_code == 200
        detail = wait_run(run_id)
        elapsed = time.monotonic() - started
        nodes = {n.id: n for n in detail.nodes}
        assert detail.state is RunState.SUCCEEDED, {k: n.error for k, n in nodes.items()}
        assert nodes["score"].outputs["answer"] == ANSWER
        assert nodes["notify"].outputs == {"level": "high"}
        [freeze_run] = children()
        assert freeze_run.inputs["customer_id"] == "C-1042"
        frozen = ops.get_run(freeze_run.id)
        assert [n.outputs for n in frozen.nodes] == [{"frozen": True, "customer": "C-1042"}]
        trail = agent_ops.agent_trail(run_id, "score")
        assert [(s.kind, s.state) for s in trail.steps] == \
            [("model", "done"), ("tool", "done"), ("model", "done")]
        assert_trail_complete(run_id, kinds=["model", "tool", "model"],
                              decided={row.id: "approved"}, client=client)
        trace = client.get(f"/api/v1/runs/{run_id}/trace", headers=bearer()).json()
        kinds = {s["kind"] for s in trace["spans"] if s["node_id"] == "score"}
        assert {"attempt", "model", "tool", "approval"} <= kinds
    assert audit_query.verify().ok
    shown = CliRunner().invoke(app, ["trace", run_id], env={"COLUMNS": "110"})
    assert shown.exit_code == 0, shown.output
    assert "tool freeze_account" in shown.output and "approval of freeze_account" in shown.output
    print(f"\nthe example ran in {elapsed:.1f}s\n{shown.output}")
    if out := os.environ.get("INTERLOCK_EXAMPLE_TRACE"):
        Path(out).write_text(shown.output)
