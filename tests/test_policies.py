"""Policies as code, with the example policies of `examples/policies/`, at each of the three
points (registration, run start, node submit) on SQLite and PostgreSQL; a child namespace
cannot loosen its parent; report-only decides and refuses nothing; every decision audited."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from interlock import clock
from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.access.principals import Forbidden, Principal
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import approvals as approval_ops
from interlock.operations import policies as policy_ops
from interlock.operations import runs as ops
from interlock.policies import context as ctx
from interlock.policies.engine import decide
from interlock.policies.load import PolicyFileError, parse_policy
from interlock.policies.model import Point
from interlock.policies.points import PolicyRefused
from interlock.spec import parse_flow
from interlock.states import ApprovalState, NodeState, RunState
from interlock.store.approvals import RequestFilter
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord
from tests.helpers import wait_run

EXAMPLES = Path(__file__).parents[1] / "examples" / "policies"
ALL_POINTS = [p.value for p in Point]


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    monkeypatch.setenv("INTERLOCK_POLICIES", str(folder))
    systems = tmp_path / "systems.yaml"
    systems.write_text("systems:\n"
                       "  airflow/bank: {url: 'http://127.0.0.1:9', labels: {env: production}}\n"
                       "  airflow/lab: {url: 'http://127.0.0.1:9', labels: {env: test}}\n")
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    from interlock.config.env import settings
    settings.cache_clear()
    return folder


@pytest.fixture
def quiet(store_url: str) -> Any:
    """The embedded dispatcher without periodic jobs (the systems here are unreachable)."""
    dispatcher = EmbeddedDispatcher()
    yield dispatcher
    dispatcher.close()


def install(folder: Path, example: str, *, points: list[str] | None = None,
            mode: str | None = None, scope: str | None = None) -> None:
    """An example policy, optionally held to some points, another mode or scope."""
    doc = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    for rule in doc["rules"]:
        if points is not None:
            rule["points"] = points
    doc.update({k: v for k, v in (("mode", mode), ("scope", scope)) if v is not None})
    (folder / f"{example}-{doc['scope'].replace('*', 'all')}.yaml").write_text(
        yaml.safe_dump(doc))


def flow(namespace: str = "bank.payments", *, uses: str = "noop", system: str | None = None,
         timeout: str | None = "1m", labels: str = "{owner: ops, data_class: internal}",
         approval: str | None = None, fid: str = "pay", concurrency: str | None = None) -> str:
    params = f"{{system: {system}}}" if system else "{}"
    node = f"    uses: {uses}\n    with: {params}\n"
    node += f"    timeout: {timeout}\n" if timeout else ""
    node += f"    approval: {approval}\n" if approval else ""
    limit = f"concurrency: {concurrency}\n" if concurrency else ""
    return (f"id: {fid}\nnamespace: {namespace}\nlabels: {labels}\n{limit}"
            f"nodes:\n  step:\n{node}")


def decisions(action: str = "policy.decision") -> list[dict[str, Any]]:
    with session_scope() as session:
        return [r.after for r in session.query(AuditRecord).filter(AuditRecord.action == action)
                .order_by(AuditRecord.seq)]


# (example, a flow it refuses, a flow it allows)
CASES = {
    "adapters": (flow(system="airflow/lab"), flow(system="airflow/bank")),
    "production-approval": (flow(system="airflow/bank"),
                            flow(system="airflow/bank",
                                 approval="{rules: [{group: a}, {group: b}]}")),
    "limits": (flow(timeout="2h"), flow(timeout="30m")),
    "concurrency": (flow(concurrency="{limit: 50}"), flow(concurrency="{limit: 2}")),
}


def _refuses_at_registration(source: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        ops.register(source, file="flow.yaml", actor="user:author")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("example", sorted(CASES))
def test_each_example_at_registration(store_url: str, policies: Path, example: str) -> None:
    install(policies, example, points=["register"])
    bad, good = CASES[example]
    problems = _refuses_at_registration(bad)
    assert problems and all(re.match(r"flow\.yaml:\d+:\d+: policy `", p) for p in problems)
    ops.register(good, actor="user:author")
    refused = [d for d in decisions() if not d["allowed"]]
    assert refused and all(d["point"] == "register" and len(d["input_hash"]) == 64
                           and d["revision"] for d in refused)


@pytest.mark.parametrize("example", sorted(CASES))
def test_each_example_at_run_start(quiet: EmbeddedDispatcher, policies: Path,
                                   example: str) -> None:
    bad, good = CASES[example]
    for source in (bad, good.replace("id: pay", "id: fine")):
        ops.register(source, actor="user:author")  # no policy yet: both register
    install(policies, example, points=["start"])
    with pytest.raises(PolicyRefused, match=r"policy `[a-z-]+` rule `[a-z-]+`"):
        ops.start_run(namespace="bank.payments", flow_id="pay", inputs={}, dispatcher=quiet)
    run_id = ops.start_run(namespace="bank.payments", flow_id="fine", inputs={},
                           dispatcher=quiet)
    assert ops.get_run(run_id).state in {RunState.PENDING, RunState.RUNNING,
                                         RunState.SUCCEEDED}  # started (a gate may wait)


@pytest.mark.parametrize("example", ["adapters", "limits"])
def test_each_example_at_node_submit(quiet: EmbeddedDispatcher, policies: Path,
                                     example: str) -> None:
    bad, _ = CASES[example]
    ops.register(bad, actor="user:author")
    install(policies, example, points=["submit"])
    run_id = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                           dispatcher=quiet, actor="user:starter")
    detail = wait_run(run_id)
    assert detail.state is RunState.FAILED and detail.nodes[0].state is NodeState.FAILED
    assert "policy `" in (detail.nodes[0].error or "")
    refused = [d for d in decisions() if not d["allowed"]]
    assert refused and refused[0]["point"] == "submit" and refused[0]["subject"] == "node:step"


def test_a_child_namespace_cannot_loosen_its_parent(store_url: str, policies: Path) -> None:
    install(policies, "limits", scope="bank.*")
    install(policies, "limits", scope="bank.payments", mode="off")  # the child's own: off
    assert _refuses_at_registration(flow(timeout="2h"))  # the parent's still holds
    ops.register(flow(timeout="2h", namespace="retail"), actor="user:author")  # not covered


def test_report_only_decides_and_refuses_nothing(quiet: EmbeddedDispatcher,
                                                 policies: Path) -> None:
    install(policies, "limits", mode="report")
    ops.register(flow(timeout="2h"), actor="user:author")
    run_id = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                           dispatcher=quiet)
    assert wait_run(run_id).state is RunState.SUCCEEDED
    refused = [d for d in decisions() if not d["allowed"]]
    # seen at every point (a start looks at every node, a submit at its own), reported only
    assert {d["point"] for d in refused} == {"register", "start", "submit"}
    assert all(d["mode"] == "report" and d["rules"] == {
        "bounded-timeout": "every node has a `timeout` of at most 1h", "bounded-retries": True}
        for d in refused)


def test_the_freeze_makes_production_work_wait_for_the_change_board(
        quiet: EmbeddedDispatcher, policies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rule's `approval:`: not refused, the node waits for the policy's gate at submit;
    one change-board vote releases it; outside the freeze nothing is asked."""
    install(policies, "freeze")
    monkeypatch.setattr(clock, "now", lambda: datetime(2026, 12, 24, 9, tzinfo=UTC))
    ops.register(flow(system="airflow/bank"), actor="user:author")
    ops.register(flow(system="airflow/lab", fid="lab"), actor="user:author")
    run_id = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                           dispatcher=quiet, actor="user:starter")
    request = _pending_request(run_id)
    assert request["subject"] == "Production work during the year-end change freeze"
    assert ops.get_run(run_id).nodes[0].state is NodeState.APPROVAL_WAIT
    with pytest.raises(Forbidden):  # the gate's rules hold: not a change-board member
        approval_ops.vote(request["id"], principal=_person("mallory", "ops"),
                          option="approve", inputs={}, comment="", dispatcher=quiet)
    approval_ops.vote(request["id"], principal=_person("carol", "change-board"),
                      option="approve", inputs={}, comment="year-end close", dispatcher=quiet)
    assert wait_run(run_id).state is RunState.SUCCEEDED
    asked = [d for d in decisions() if d["point"] == "submit"]
    assert [d["allowed"] for d in asked] == [False, True]  # asked, then passed with the gate
    assert "waits for an approval" in asked[0]["rules"]["freeze-production"]
    lab = ops.start_run(namespace="bank.payments", flow_id="lab", inputs={}, dispatcher=quiet)
    assert wait_run(lab).state is RunState.SUCCEEDED  # not production: nothing asked
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 1, 5, 9, tzinfo=UTC))
    after = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                          dispatcher=quiet)
    assert wait_run(after).state is RunState.SUCCEEDED  # the freeze is over


def test_a_node_with_its_own_gate_that_misses_the_policy_is_refused(
        quiet: EmbeddedDispatcher, policies: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(policies, "freeze")
    (policies / "two.yaml").write_text(
        "policy: two-people\nrules:\n  - name: two\n"
        "    when: \"'env' in system.labels && system.labels.env == 'production'\"\n"
        "    check: \"node.approval != null && node.approval.people >= 2\"\n"
        "    message: two people\n    points: [submit]\n"
        "    approval: {subject: Two people, rules: [{group: change-board, count: 2}]}\n")
    monkeypatch.setattr(clock, "now", lambda: datetime(2027, 1, 5, 9, tzinfo=UTC))
    ops.register(flow(system="airflow/bank", approval="{rules: [{group: a}]}"),
                 actor="user:author")
    run_id = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                           dispatcher=quiet, actor="user:starter")
    request = _pending_request(run_id)  # its own one-person gate asks first
    approval_ops.vote(request["id"], principal=_person("alice", "a"), option="approve",
                      inputs={}, comment="", dispatcher=quiet)
    detail = wait_run(run_id)
    assert detail.state is RunState.FAILED
    assert "its node has another approval gate" in (detail.nodes[0].error or "")


def _person(name: str, *groups: str) -> Principal:
    with session_scope() as session:
        token, _ = tokens.create(session, name=name, role=Role.APPROVER, namespace="*",
                                 created_by="tests", groups=groups)
        principal, _ = tokens.authenticate(session, token)
    return principal


def _pending_request(run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = approval_ops.list_requests(
            filters=RequestFilter(states=(ApprovalState.PENDING,), run_id=run_id))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no pending request for run {run_id}")


class _Null:
    def send(self, *_: Any, **__: Any) -> None:
        return None


def test_the_agent_example_bounds_models_and_budgets() -> None:
    """Agents come with the agent issue; the rule is checked on the node it will see."""
    loaded = parse_policy((EXAMPLES / "agents.yaml").read_text(), "agents.yaml")
    base = ctx.base(parse_flow("id: f\nnodes: {a: {uses: noop}}\n"), point="submit",
                    now=clock.now(), actor="user:x")

    def verdict(params: dict[str, Any]) -> list[bool]:
        node = {"id": "a", "adapter": "agent", "params": params, "system": ""}
        return [d.allowed for d in decide(loaded.policy, loaded.revision, Point.SUBMIT,
                                          "node:a", {**base, "node": node})]

    assert verdict({"model": "local/qwen2.5-7b", "max_cost_usd": 2}) == [True]
    assert verdict({"model": "gpt-5", "max_cost_usd": 2}) == [False]
    assert verdict({"model": "local/qwen2.5-7b", "max_cost_usd": 50}) == [False]
    assert verdict({"model": "local/qwen2.5-7b"}) == [False]  # no budget: refused


def test_validate_reports_violations_and_broken_policy_files(policies: Path,
                                                            tmp_path: Path) -> None:
    install(policies, "limits")
    target = tmp_path / "flow.yaml"
    target.write_text(flow(timeout="2h"))
    problems = policy_ops.validate([target])
    assert [p.message for p in problems] == [
        "policy `node-limits` rule `bounded-timeout` (node:step): every node has a `timeout` "
        "of at most 1h"]
    assert problems[0].line == 5  # at the node
    for text, message in (
            ("policy: x\nrules: [{name: r, check: 'node.', message: m}]\n", "not CEL"),
            ("policy: x\nrules: [{name: r, check: 'os.system(1)', message: m}]\n", "reads os"),
            ("policy: x\nscope: '**'\nrules: [{name: r, check: 'true', message: m}]\n", "scope"),
            ("policy: x\nmode: maybe\nrules: [{name: r, check: 'true', message: m}]\n", "mode"),
            ("policy: x\nrules: []\n", "rules")):
        with pytest.raises(PolicyFileError) as caught:
            parse_policy(text, "p.yaml")
        assert message in str(caught.value), text
    (policies / "broken.yaml").write_text("policy: x\nrules: [{name: r, check: '1 +', "
                                          "message: m}]\n")
    assert any("not CEL" in p.message for p in policy_ops.validate([target]))


def test_a_rule_that_fails_to_evaluate_refuses(store_url: str, policies: Path) -> None:
    (policies / "strict.yaml").write_text(
        "policy: strict\nrules:\n  - name: env-label\n"
        "    check: \"system.labels.env == 'production'\"\n    message: production only\n")
    problems = _refuses_at_registration(flow())
    assert "the rule failed" in problems[0]


def test_the_api_shows_the_policies_in_force_and_checks_a_policy_text(
        sqlite_store: str, policies: Path) -> None:
    import warnings

    from helpers import bearer

    from interlock.access.permissions import Role
    from interlock.api.main import create_app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    install(policies, "limits", scope="bank.*")
    install(policies, "adapters", scope="retail", mode="off")
    with TestClient(create_app(dispatcher=_Null())) as client:  # type: ignore[arg-type]
        reader = bearer(Role.VIEWER, "bank.*")
        shown = client.get("/api/v1/policies", params={"namespace": "bank.payments"},
                           headers=reader).json()
        assert [(p["policy"], p["mode"], len(p["revision"])) for p in shown] == [
            ("node-limits", "enforce", 16)]
        assert client.get("/api/v1/policies", params={"namespace": "retail"},
                          headers=reader).status_code == 404  # not the caller's namespace
        checked = client.post("/api/v1/policies/validate", headers=reader, json={
            "source": "policy: p\nrules: [{name: r, check: 'os.getenv(1)', message: m}]\n",
            "file": "p.yaml"}).json()
        assert not checked["valid"] and "reads os" in checked["problems"][0]["message"]
        huge = client.post("/api/v1/policies/validate", headers=reader,
                           json={"source": "x" * 300_000})
        assert huge.status_code == 422


def test_policies_written_and_deleted_through_the_api(sqlite_store: str,
                                                      policies: Path) -> None:
    """A write is a file in the folder (applied from the next decision), audited; the writer
    needs `policies:admin` on the scope's root; stale writes, mismatched names, broken text
    and hostile names are refused and change nothing."""
    import warnings

    from helpers import bearer

    from interlock.access.permissions import Role
    from interlock.api.main import create_app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    text = (EXAMPLES / "limits.yaml").read_text().replace('scope: "*"', "scope: bank.*")
    api = "/api/v1/policies"
    with TestClient(create_app(dispatcher=_Null())) as client:  # type: ignore[arg-type]
        bank_admin = bearer(Role.ADMIN, "bank.*", name="bank-admin")
        made = client.put(f"{api}/node-limits", headers=bank_admin, json={"source": text})
        assert made.status_code == 200, made.text
        assert made.json()["created"] and (policies / "node-limits.yaml").read_text() == text
        revision = made.json()["revision"]
        assert _refuses_at_registration(flow(timeout="2h"))  # in force at once
        # A stale writer (it read another revision) is refused; nothing changes.
        looser = text.replace("<= 3600.0", "<= 7200.0")
        stale = client.put(f"{api}/node-limits", headers=bank_admin,
                           json={"source": looser, "expected_revision": "0" * 16})
        assert stale.status_code == 409 and "read it again" in stale.text
        assert (policies / "node-limits.yaml").read_text() == text
        updated = client.put(f"{api}/node-limits", headers=bank_admin,
                             json={"source": looser, "expected_revision": revision})
        assert updated.status_code == 200 and not updated.json()["created"]
        # Scope: a bank admin cannot write a policy for everyone, nor for retail.
        for scope, status in (('"*"', 403), ("retail", 404)):
            other = client.put(f"{api}/wide", headers=bank_admin, json={
                "source": f"policy: wide\nscope: {scope}\nconcurrency: {{runs: 1}}\n"})
            assert other.status_code == status, other.text
        assert not (policies / "wide.yaml").exists()
        for name, source, status in (
                ("other-name", text, 409),                                # name mismatch
                ("node-limits", "policy: node-limits\nrules: [{name: r, check: '1 +', "
                                "message: m}]\n", 422),                    # not CEL
                ("node-limits", "policy: node-limits\nscope: bank.*\nrules: *a\n", 422),
                ("..%2F..%2Fetc%2Fx", text, 422),                          # path escape
                (".hidden", text, 422)):
            refused = client.put(f"{api}/{name}", headers=bank_admin, json={"source": source})
            assert refused.status_code in (status, 404), (name, refused.text)
        assert sorted(p.name for p in policies.glob("*.yaml")) == ["node-limits.yaml"]
        assert client.delete(f"{api}/node-limits", headers=bearer(Role.OPERATOR, "bank.*")
                             ).status_code == 403
        assert client.delete(f"{api}/node-limits", headers=bank_admin).status_code == 204
        assert not (policies / "node-limits.yaml").exists()
        assert client.delete(f"{api}/node-limits", headers=bank_admin).status_code == 404
    written = decisions("policy.written")
    assert [w["revision"] for w in written] == [revision, updated.json()["revision"]]
    assert decisions("policy.deleted") == [None]  # a delete has only a `before`
    with session_scope() as session:
        deleted = session.query(AuditRecord).filter(
            AuditRecord.action == "policy.deleted").one()
        assert deleted.before["policy"] == "node-limits" and deleted.actor == "user:bank-admin"


def test_a_webhook_refused_by_a_policy_is_audited(quiet: EmbeddedDispatcher,
                                                  policies: Path) -> None:
    from interlock.operations import webhooks
    source = flow(timeout="2h").replace("nodes:\n", "triggers: [{webhook: {key: paid}}]\nnodes:\n")
    ops.register(source, actor="user:author")
    install(policies, "limits", points=["start"])
    with pytest.raises(PolicyRefused, match="bounded-timeout"):
        webhooks.fire_webhook(namespace="bank.payments", flow_id="pay", key="paid", payload={},
                              origin="203.0.113.9", idempotency_key=None, dispatcher=quiet)
    refused = [d for d in decisions() if not d["allowed"]]
    assert [(d["point"], d["policy"]) for d in refused] == [("start", "node-limits")]


def test_two_rules_asking_one_node_for_approvals_refuse_it_at_once(
        quiet: EmbeddedDispatcher, policies: Path) -> None:
    """One gate per node: asked by two rules, the node fails before anyone is asked."""
    for name in ("one", "two"):
        (policies / f"{name}.yaml").write_text(
            f"policy: {name}\nrules:\n  - name: r\n    check: \"node.id == ''\"\n    message: m\n"
            f"    points: [submit]\n    approval: {{subject: {name}, rules: [{{group: g}}]}}\n")
    ops.register(flow(), actor="user:author")
    run_id = ops.start_run(namespace="bank.payments", flow_id="pay", inputs={},
                           dispatcher=quiet, actor="user:starter")
    detail = wait_run(run_id)
    assert detail.state is RunState.FAILED
    assert "more than one rule asks" in (detail.nodes[0].error or "")
    assert approval_ops.list_requests(filters=RequestFilter(run_id=run_id)) == []
