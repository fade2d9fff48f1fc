"""Approval gates end to end on the embedded dispatcher, on SQLite and on PostgreSQL: quorum
with several rules, one vote per person, separation of duties, rejection, timeouts, the
approval bound to its values, an approver losing the role before submit, and the audit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from interlock.access import tokens
from interlock.access.permissions import Role
from interlock.access.principals import Forbidden, Principal
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import Conflict
from interlock.operations import approvals as approval_ops
from interlock.operations import runs as ops
from interlock.states import ApprovalState, NodeState, RunState
from interlock.store import approvals as store
from interlock.store.approvals import RequestFilter
from interlock.store.db import session_scope
from interlock.store.tables import AuditRecord
from tests.helpers import wait_run

NS = "bank.payments"
PAYMENT = f"""
id: payment
namespace: {NS}
inputs: {{amount: {{type: integer, required: true}}}}
nodes:
  screen: {{uses: noop, with: {{amount: "{{{{ inputs.amount }}}}", hit: false}}}}
  release:
    uses: noop
    needs: [screen]
    with: {{amount: "{{{{ nodes.screen.outputs.amount }}}}"}}
    approval:
      subject: "Release payment of {{{{ inputs.amount }}}}"
      body: "Screening hit: {{{{ nodes.screen.outputs.hit }}}}"
      rules:
        - {{group: compliance, count: 1}}
        - {{group: risk, count: 1}}
"""


class Null:
    """A dispatcher that sends nothing: the test advances runs itself."""

    def send(self, *_: Any, **__: Any) -> None:
        return None


def person(name: str, *groups: str, role: Role = Role.APPROVER) -> Principal:
    with session_scope() as session:
        token, _ = tokens.create(session, name=name, role=role, namespace=NS,
                                 created_by="tests", groups=groups)
        principal, _ = tokens.authenticate(session, token)
    return principal


def start(embedded: Any, source: str = PAYMENT, *, by: str = "user:starter",
          author: str = "user:author") -> str:
    flow, _ = ops.register(source, actor=author)
    inputs = {"amount": 900} if flow.inputs else {}
    return ops.start_run(namespace=flow.namespace, flow_id=flow.id, inputs=inputs,
                         dispatcher=embedded, actor=by)


def request_of(run_id: str, timeout: float = 20.0, *, state: str = "pending") -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in approval_ops.list_requests(filters=RequestFilter(run_id=run_id))
                 if r["state"] == state]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError(f"no {state} approval request for run {run_id}")


def vote(request_id: str, who: Principal, option: str = "approve", dispatcher: Any = None,
         **inputs: Any) -> dict[str, Any]:
    return approval_ops.vote(request_id, principal=who, option=option, inputs=inputs,
                             comment=f"{who.name} says {option}", dispatcher=dispatcher or Null())


def audit_of(request_id: str) -> list[AuditRecord]:
    with session_scope() as session:
        return list(session.query(AuditRecord).filter(
            AuditRecord.target == f"approvals/{request_id}").order_by(AuditRecord.seq))


def test_two_rules_two_people_and_nobody_counts_twice(embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded)
    asked = request_of(run_id)
    assert asked["subject"] == "Release payment of 900"
    assert ops.get_run(run_id).state is RunState.RUNNING
    node = {n.id: n for n in ops.get_run(run_id).nodes}["release"]
    assert node.state is NodeState.APPROVAL_WAIT

    # One person in both groups fills one seat only: a two-person rule stays two people.
    both = person("both", "compliance", "risk")
    first = vote(asked["id"], both, dispatcher=embedded)
    assert first["state"] == "pending" and "1 more" in first["tally"]
    with pytest.raises(Conflict, match="already voted"):
        vote(asked["id"], both, dispatcher=embedded)
    outsider = person("outsider", "marketing")
    with pytest.raises(Forbidden, match="not among the people"):
        vote(asked["id"], outsider, dispatcher=embedded)

    decided = vote(asked["id"], person("rita", "risk"), dispatcher=embedded)
    assert decided["state"] == "approved"
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    release = {n.id: n for n in detail.nodes}["release"]
    assert release.outputs == {"amount": 900}

    shown = approval_ops.get_request(asked["id"])
    assert shown["decided_by"] == ["user:both", "user:rita"]
    assert shown["payload"] == {"amount": 900}
    assert shown["run"]["trigger"]["by"] == "user:starter"
    assert shown["excluded"] == {"user:starter": "started the run",
                                 "user:author": "wrote the flow revision"}
    actions = [r.action for r in audit_of(asked["id"])]
    assert actions == ["approval.requested", "approval.voted", "approval.voted",
                       "approval.state"]
    decision = audit_of(asked["id"])[-1].after
    assert decision["counted"] == {"user:both": "1 from group compliance",
                                   "user:rita": "1 from group risk"}
    assert decision["payload_hash"] == shown["payload_hash"] and len(shown["payload_hash"]) == 64


def test_the_starter_and_the_author_cannot_approve(embedded: EmbeddedDispatcher) -> None:
    starter = person("starter", "compliance")
    author = person("author", "risk")
    run_id = start(embedded, by=starter.actor, author=author.actor)
    asked = request_of(run_id)
    for who, why in ((starter, "started the run"), (author, "wrote the flow revision")):
        with pytest.raises(Forbidden, match=f"{why}.*separation of duties"):
            vote(asked["id"], who, dispatcher=embedded)
    assert approval_ops.votes_of(asked["id"]) == []  # a refused vote leaves nothing
    mine = approval_ops.list_requests(filters=RequestFilter(states=(ApprovalState.PENDING,)),
                                      mine=starter)
    assert mine == []
    assert [r["id"] for r in approval_ops.list_requests(
        filters=RequestFilter(states=(ApprovalState.PENDING,)),
        mine=person("carla", "compliance"))] == [asked["id"]]


def test_a_policy_may_waive_a_duty_and_a_parent_may_keep_it(
        embedded: EmbeddedDispatcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small team's namespace lets the flow's author approve (recorded on the request and
    the vote); the starter stays excluded; a parent's `keep` wins over a child's `waive`."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "team.yaml").write_text(f"policy: small-team\nscope: {NS}\n"
                                      "separation: {waive: [author, starter]}\n")
    (folder / "bank.yaml").write_text("policy: bank-separation\nscope: bank.*\n"
                                      "separation: {keep: [starter]}\n")
    monkeypatch.setenv("INTERLOCK_POLICIES", str(folder))
    settings.cache_clear()
    starter = person("starter", "compliance")
    author = person("author", "risk")
    run_id = start(embedded, by=starter.actor, author=author.actor)
    asked = request_of(run_id)
    with pytest.raises(Forbidden, match="started the run.*separation of duties"):
        vote(asked["id"], starter, dispatcher=embedded)  # kept by the parent
    vote(asked["id"], author, dispatcher=embedded)       # waived by the child: counts
    vote(asked["id"], person("carla", "compliance"), dispatcher=embedded)
    assert wait_run(run_id).state is RunState.SUCCEEDED
    records = {r.action: r.after for r in audit_of(asked["id"]) if r.actor != starter.actor}
    waived = "wrote the flow revision; waived by policy `small-team`"
    assert records["approval.requested"]["waived"] == {author.actor: waived}
    voted = [r.after for r in audit_of(asked["id"]) if r.action == "approval.voted"]
    assert [v.get("separation_waived") for v in voted] == [waived, None]
    assert approval_ops.get_request(asked["id"])["waived"] == {author.actor: waived}


def test_a_rejection_fails_the_node_with_the_reason(embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded)
    asked = request_of(run_id)
    vote(asked["id"], person("carl", "compliance"), option="reject", dispatcher=embedded)
    detail = wait_run(run_id)
    release = {n.id: n for n in detail.nodes}["release"]
    assert detail.state is RunState.FAILED and release.state is NodeState.FAILED
    assert "reject by user:carl: carl says reject" in (release.error or "")
    trace = ops.run_trace(run_id)
    assert "carl says reject" in str(trace.model_dump())


SKIPPING = PAYMENT.replace("      subject:", "      on_reject: skip\n      subject:") + """
  notify: {uses: noop, needs: [release]}
  audit: {uses: noop, needs: [release], trigger_rule: all_done,
          with: {choice: "{{ nodes.release.state }}"}}
"""


def test_on_reject_skip_skips_downstream(
        embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded, SKIPPING)
    first = request_of(run_id)
    vote(first["id"], person("cleo", "compliance"), option="reject", dispatcher=embedded)
    detail = wait_run(run_id)
    nodes = {n.id: n for n in detail.nodes}
    assert detail.state is RunState.SUCCEEDED
    assert nodes["release"].state is nodes["notify"].state is NodeState.SKIPPED
    assert nodes["audit"].outputs == {"choice": "skipped"}
    assert nodes["release"].reason == "approval: reject by user:cleo: cleo says reject"


DECISION = f"""
id: decide
namespace: {NS}
nodes:
  choose:
    uses: approval
    approval:
      subject: Pick a limit
      options: [approve, approve_capped, reject]
      inputs: {{limit: {{type: integer, required: true}}}}
      rules: [{{role: approver, count: 1}}]
  apply: {{uses: noop, needs: [choose],
           with: {{option: "{{{{ nodes.choose.outputs.option }}}}",
                   limit: "{{{{ nodes.choose.outputs.inputs.limit }}}}",
                   seen: "{{{{ nodes.choose.approval.option }}}}"}}}}
"""


def test_a_decision_node_passes_its_option_and_inputs_downstream(
        embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded, DECISION)
    asked = request_of(run_id)
    who = person("dora")
    with pytest.raises(Exception, match="limit"):
        vote(asked["id"], who, option="approve_capped", dispatcher=embedded)
    with pytest.raises(Exception, match="not offered"):
        vote(asked["id"], who, option="maybe", dispatcher=embedded, limit=5)
    vote(asked["id"], who, option="approve_capped", dispatcher=embedded, limit=5000)
    detail = wait_run(run_id)
    nodes = {n.id: n for n in detail.nodes}
    assert detail.state is RunState.SUCCEEDED
    assert nodes["apply"].outputs == {"option": "approve_capped", "limit": 5000,
                                      "seen": "approve_capped"}


def _timed(on_timeout: str) -> str:
    return f"""
id: timed-{on_timeout}
namespace: {NS}
nodes:
  go:
    uses: noop
    approval: {{subject: quick, timeout: 300ms, on_timeout: {on_timeout},
                rules: [{{role: approver}}]}}
"""


@pytest.mark.parametrize(("on_timeout", "node_state", "run_state"), [
    ("reject", NodeState.FAILED, RunState.FAILED),
    ("fail", NodeState.TIMED_OUT, RunState.FAILED),
    ("approve", NodeState.SUCCEEDED, RunState.SUCCEEDED),
])
def test_each_on_timeout(embedded: EmbeddedDispatcher, on_timeout: str, node_state: NodeState,
                         run_state: RunState) -> None:
    run_id = start(embedded, _timed(on_timeout))
    asked = request_of(run_id)
    detail = wait_run(run_id, timeout=30)
    assert detail.state is run_state
    assert detail.nodes[0].state is node_state
    closed = approval_ops.get_request(asked["id"])
    assert closed["state"] == "timed_out" and "nobody decided" in closed["reason"]
    with pytest.raises(Conflict):
        vote(asked["id"], person(f"late-{on_timeout}"), dispatcher=embedded)


def test_an_approver_who_loses_the_role_before_submit_no_longer_counts(
        embedded: EmbeddedDispatcher) -> None:
    from interlock.dispatch.controller import advance

    run_id = start(embedded)
    asked = request_of(run_id)
    vote(asked["id"], person("cora", "compliance"))
    vote(asked["id"], person("ravi", "risk"))  # approved, but not yet planned (Null)
    assert approval_ops.get_request(asked["id"])["state"] == "approved"
    with session_scope() as session:
        tokens.revoke(session, "ravi")
    advance(run_id, dispatcher=embedded)
    reopened = approval_ops.get_request(asked["id"])
    assert reopened["state"] == "pending"
    node = {n.id: n for n in ops.get_run(run_id).nodes}["release"]
    assert node.state is NodeState.APPROVAL_WAIT
    assert "user:ravi no longer counts" in audit_of(asked["id"])[-1].after["reason"]
    assert reopened["tally"]["missing"] == {"1 from group risk": 1}
    vote(asked["id"], person("rosa", "risk"), dispatcher=embedded)
    assert wait_run(run_id).state is RunState.SUCCEEDED


def test_a_cancel_closes_the_request_and_later_votes_are_refused(
        embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded)
    asked = request_of(run_id)
    ops.cancel_run(run_id, dispatcher=embedded)
    assert wait_run(run_id).state is RunState.CANCELLED
    assert approval_ops.get_request(asked["id"])["state"] == "cancelled"
    with pytest.raises(Conflict):
        vote(asked["id"], person("cid", "compliance"), dispatcher=embedded)


def test_hostile_request_ids_and_values(embedded: EmbeddedDispatcher) -> None:
    from interlock.errors import NotFound

    for bad in ("../../etc/passwd", "x" * 5000, "' OR 1=1 --", "\x00"):
        with pytest.raises(NotFound):
            approval_ops.get_request(bad)
    run_id = start(embedded, DECISION)
    asked = request_of(run_id)
    who = person("hugo")
    deep: Any = 1
    for _ in range(200):
        deep = [deep]
    for limit in ("5; rm -rf /", deep, True):
        with pytest.raises(Exception, match="limit"):
            vote(asked["id"], who, option="approve", dispatcher=embedded, limit=limit)
    with pytest.raises(Exception, match="declares no such input"):
        vote(asked["id"], who, option="approve", dispatcher=embedded, limit=1, extra=2)
    assert approval_ops.votes_of(asked["id"]) == []
    with session_scope() as session:
        assert store.get(session, asked["id"]).state == "pending"  # type: ignore[union-attr]


def test_validate_refuses_a_decision_without_a_gate_and_bad_rules(tmp_path: Path) -> None:
    from interlock.errors import SpecError
    from interlock.spec import parse_flow

    cases = {
        "nodes: {a: {uses: approval}}": "needs `approval:`",
        "nodes: {a: {uses: noop, approval: {rules: [{count: 2}]}}}": "names who may count",
        "nodes: {a: {uses: noop, approval: {on_timeout: approve}}}": "needs a `timeout:`",
        "nodes: {a: {uses: noop, approval: {options: [reject]}}}": "at least 2",
        "nodes: {a: {uses: noop, approval: {options: [a, b], reject_options: [c]}}}":
            "not among `options`",
        "nodes: {a: {uses: noop, approval: {subject: '{{ inputs.nope }}'}}}":
            "does not declare",
    }
    for body, message in cases.items():
        with pytest.raises(SpecError) as caught:
            parse_flow(f"id: f\n{body}\n", "f.yaml")
        assert message in str(caught.value.problems), body


def _void_flow(tmp_path: Path) -> str:
    flag_a, flag_b = tmp_path / "a.flag", tmp_path / "b.flag"
    return f"""
id: void
namespace: {NS}
nodes:
  a:
    uses: script
    with: {{command: ["sh", "-c", "test -f {flag_a} || {{ touch {flag_a}; exit 1; }}"]}}
  b:
    uses: script
    needs: [a]
    trigger_rule: all_done
    with:
      command: ["sh", "-c", "test -f {flag_b} || {{ touch {flag_b}; exit 1; }}",
                "{{{{ nodes.a.state }}}}"]
    approval: {{subject: "a was {{{{ nodes.a.state }}}}", rules: [{{role: approver}}]}}
"""


def test_an_approval_is_void_when_a_retry_would_submit_other_values(
        embedded: EmbeddedDispatcher, tmp_path: Path) -> None:
    run_id = start(embedded, _void_flow(tmp_path))
    first = request_of(run_id)
    assert first["subject"] == "a was failed"
    vote(first["id"], person("vera"), dispatcher=embedded)
    assert wait_run(run_id).state is RunState.FAILED  # a failed the first time, b too
    assert sorted(ops.retry_run(run_id, dispatcher=embedded)) == ["a", "b"]
    second = request_of(run_id)  # a succeeded now: b's values changed, so it asks again
    assert second["id"] != first["id"] and second["subject"] == "a was succeeded"
    old = approval_ops.get_request(first["id"])
    assert old["state"] == "void" and "changed" in old["reason"]
    assert old["payload_hash"] != second["payload_hash"]
    node = {n.id: n for n in ops.get_run(run_id).nodes}["b"]
    assert node.state is NodeState.APPROVAL_WAIT
    vote(second["id"], person("vik"), dispatcher=embedded)
    assert wait_run(run_id).state is RunState.SUCCEEDED


ESCALATING = f"""
id: escalating
namespace: {NS}
nodes:
  go:
    uses: noop
    approval:
      subject: escalate me
      remind_every: 150ms
      rules: [{{group: compliance}}]
      escalate: {{after: 400ms, rules: [{{group: heads}}]}}
"""


def test_reminders_then_escalation_lets_the_other_rules_decide(
        embedded: EmbeddedDispatcher) -> None:
    run_id = start(embedded, ESCALATING)
    asked = request_of(run_id)
    head = person("hana", "heads")
    with pytest.raises(Forbidden, match="not among the people"):
        vote(asked["id"], head, dispatcher=embedded)
    deadline = time.monotonic() + 20
    while "approval.escalated" not in [r.action for r in audit_of(asked["id"])]:
        assert time.monotonic() < deadline, "never escalated"
        time.sleep(0.05)
    actions = [r.action for r in audit_of(asked["id"])]
    assert actions.count("approval.reminded") >= 1
    assert approval_ops.get_request(asked["id"])["escalated"] is True
    decided = vote(asked["id"], head, dispatcher=embedded)
    assert decided["state"] == "approved"
    assert wait_run(run_id).state is RunState.SUCCEEDED


def test_the_compliance_example_needs_compliance_and_risk(embedded: EmbeddedDispatcher) -> None:
    source = (Path(__file__).parents[1] / "examples/compliance/flow.yaml").read_text()
    flow, _ = ops.register(source, actor="user:author")
    starter = person("sam", "compliance", role=Role.OPERATOR)
    run_id = ops.start_run(namespace=flow.namespace, flow_id=flow.id, dispatcher=embedded,
                           actor=starter.actor,
                           inputs={"beneficiary": "Jane Roe", "iban": "FR7630006000011234567890189",
                                   "amount": 25000})
    asked = request_of(run_id)
    assert asked["subject"] == "Release 25000 EUR to Jane Roe"
    shown = approval_ops.get_request(asked["id"])
    assert "0 hit(s)" in shown["body"] and shown["payload"]["env"]["AMOUNT"] == 25000
    with pytest.raises(Forbidden, match="started the run"):
        vote(asked["id"], starter, dispatcher=embedded)
    vote(asked["id"], person("cleo", "compliance"), dispatcher=embedded)
    vote(asked["id"], person("rob", "risk"), dispatcher=embedded)
    detail = wait_run(run_id)
    assert detail.state is RunState.SUCCEEDED
    confirm = {n.id: n for n in detail.nodes}["confirm"]
    assert confirm.outputs["approved_by"] == ["user:cleo", "user:rob"]
    assert confirm.outputs["reference"].startswith("PAY-")


def test_a_rule_naming_an_unknown_role_is_refused_at_registration(sqlite_store: str) -> None:
    from interlock.errors import SpecError

    source = "id: f\nnodes:\n  a: {uses: noop, approval: {rules: [{role: approvers}]}}\n"
    with pytest.raises(SpecError, match="`approvers` is not a role; use one of admin"):
        ops.register(source)


IMPACTED = f"""
id: pay-ledger
namespace: {NS}
nodes:
  pay:
    uses: noop
    produces: [{{namespace: "postgres://ledger", name: payments}}]
    approval: {{subject: pay, rules: [{{role: approver}}]}}
"""
DOWNSTREAM = """
id: reconcile
namespace: bank.finance
nodes:
  match:
    uses: noop
    consumes: [{namespace: "postgres://ledger", name: payments}]
    produces: [{namespace: "s3://reports", name: daily-reconciliation}]
"""


def test_the_request_shows_what_the_decision_touches_downstream(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(DOWNSTREAM, actor="user:author")
    run_id = start(embedded, IMPACTED)
    shown = approval_ops.get_request(request_of(run_id)["id"])
    impact = shown["impact"]
    assert impact is not None
    datasets = {(d["namespace"], d["name"]) for d in impact["datasets"]}
    assert datasets == {("postgres://ledger", "payments"),
                        ("s3://reports", "daily-reconciliation")}
    assert "bank.finance/reconcile" in impact["flows"]


def test_the_local_cli_that_started_a_run_cannot_approve_it_locally(
        embedded: EmbeddedDispatcher) -> None:
    from interlock.operations.access import local_principal

    me = local_principal()
    run_id = start(embedded, DECISION, by=f"cli:{me.name}")
    asked = request_of(run_id)
    with pytest.raises(Forbidden, match="started the run"):
        vote(asked["id"], me, option="approve", dispatcher=embedded, limit=1)
