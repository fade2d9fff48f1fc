"""What a person sees before deciding: the request, the run and its trigger, the exact values
the gated node will be submitted with, the upstream outputs it uses, the votes so far, and
the impact: the jobs, datasets, systems and flows downstream of the node in the lineage graph.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from interlock.adapters.openlineage import JOB_NAMESPACE, node_job_name
from interlock.approvals import gates
from interlock.approvals.quorum import tally
from interlock.errors import NotFound
from interlock.lineage import queries
from interlock.lineage.nodes import NodeKind, Stream, node_id
from interlock.store import approvals as store
from interlock.store import facts
from interlock.store.flows import flow_of_run
from interlock.store.tables import ApprovalRequest, NodeRun, Run

IMPACT_DEPTH = 10


def summary(row: ApprovalRequest) -> dict[str, Any]:
    """What lists show of a request."""
    return {"id": row.id, "origin": row.origin, "state": row.state, "subject": row.subject,
            "namespace": row.namespace, "flow": row.flow, "run_id": row.run_id,
            "node_id": row.node_id, "system": row.system, "options": row.options,
            "created_at": row.created_at, "deadline": row.deadline,
            "escalated": row.escalated_at is not None, "option": row.option,
            "decided_by": row.decided_by, "decided_at": row.decided_at, "reason": row.reason,
            "link": row.link, "payload_hash": row.payload_hash}


def detail(session: Session, row: ApprovalRequest) -> dict[str, Any]:
    """The whole request with its evidence."""
    votes = store.votes_of(session, row.id)
    rules, escalation = gates.rules_of(row)
    pending = {}
    if row.state == "pending":
        option_votes: dict[str, int] = {}
        for vote in votes:
            option_votes[vote.option] = option_votes.get(vote.option, 0) + 1
        best = max(option_votes, key=option_votes.__getitem__, default=None)
        voters = [v for v in gates.current_voters(
            session, row, option=best,
            inputs=next((v.inputs for v in votes if v.option == best), {})) if v is not None]
        pending = {"leading_option": best, "missing": tally(rules, voters).missing}
    return {
        **summary(row),
        "body": row.body,
        "reject_options": row.reject_options,
        "inputs": row.inputs_spec,
        "rules": [r.model_dump(mode="json") for r in rules],
        "escalation_rules": row.escalation,
        "excluded": row.excluded,
        "waived": (row.details or {}).get("waived", {}),  # separation a policy waived
        "votes": [{"actor": v.actor, "option": v.option, "inputs": v.inputs,
                   "comment": v.comment, "at": v.at} for v in votes],
        "tally": pending,
        "decision_inputs": row.decision_inputs,
        "payload": row.payload,
        "details": row.details,
        **_run_evidence(session, row),
    }


def _run_evidence(session: Session, row: ApprovalRequest) -> dict[str, Any]:
    if row.run_id is None or row.node_id is None:
        return {"run": None, "upstream": {}, "impact": None}
    run = session.get(Run, row.run_id)
    if run is None:
        raise NotFound(f"run `{row.run_id}` does not exist")
    flow = flow_of_run(session, run)
    node = flow.nodes.get(row.node_id)
    needs = node.needs if node is not None else []
    upstream = {n.node_id: {"state": n.state, "outputs": facts.bounded(n.outputs)}
                for n in session.query(NodeRun).filter(NodeRun.run_id == run.id,
                                                       NodeRun.node_id.in_(needs))}
    return {
        "run": {"id": run.id, "flow": f"{run.namespace}/{run.flow_id}",
                "revision": run.revision, "state": run.state, "trigger": run.trigger,
                "inputs": facts.bounded(run.inputs), "created_at": run.created_at},
        "upstream": upstream,
        "impact": impact(session, flow.ref, row.node_id),
    }


def impact(session: Session, flow_ref: str, node: str) -> dict[str, Any] | None:
    """Downstream of the node's job in the lineage graph; None when lineage has no record
    of it yet (a flow registered before lineage, or lineage off)."""
    job = node_id(NodeKind.JOB, JOB_NAMESPACE, node_job_name(flow_ref, node))
    try:
        return queries.impact(session, job, stream=Stream.DOWNSTREAM, depth=IMPACT_DEPTH)
    except NotFound:
        return None
