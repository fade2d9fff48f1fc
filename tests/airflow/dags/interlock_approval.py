"""Two human-in-the-loop requests side by side, then `record`, which needs both answers.

`approve` (ApprovalOperator: Approve / Reject) and `choose` (HITLOperator: one region of
three, with a form field) both wait in `awaiting_input` until someone answers them in
Airflow's UI, through its REST API or through Interlock (tests/test_airflow_hitl.py).
`record` returns what was chosen (its XCom), so a test sees the run was released with it.
"""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLOperator
from airflow.sdk import Param, dag, task

# Interlock's service account and a second person: only they may answer (when auth is on).
ASSIGNED = [{"id": "interlock", "name": "Interlock"}, {"id": "reviewer", "name": "Reviewer"}]
REGIONS = ["eu-west", "us-east", "ap-south"]


@dag(
    dag_id="interlock_approval",
    schedule=None,
    catchup=False,
    tags=["interlock-test"],
    default_args={"retries": 0},
)
def interlock_approval():
    approve = ApprovalOperator(
        task_id="approve",
        subject="Release the screening results of {{ run_id }}?",
        body="The sanctions screening finished; **approve** to publish its results.",
        assigned_users=ASSIGNED,
    )
    choose = HITLOperator(
        task_id="choose",
        subject="Which region publishes first?",
        body="Pick one region.",
        options=REGIONS,
        defaults=REGIONS[0],
        params={"note": Param("none", type="string")},
        assigned_users=ASSIGNED,
    )

    @task
    def record(approval: dict, choice: dict) -> dict:
        chosen = {"approved": approval["chosen_options"], "region": choice["chosen_options"],
                  "note": (choice.get("params_input") or {}).get("note")}
        print(f"interlock_approval chosen: {chosen}")
        return chosen

    record(approve.output, choose.output)


interlock_approval()
