"""One flow across real systems: an Airflow DAG -> a Dagster job -> a script."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from airflow_flows import SECRET_ENV, node, start
from airflow_harness import AirflowServer
from dagster_harness import DagsterServer
from helpers import wait_run

from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations.runtime import periodic_jobs

pytestmark = pytest.mark.timeout(600)

FLOW = """
    id: kyc
    namespace: tests.cross
    nodes:
      sanctions:
        uses: airflow
        with: {system: airflow/test, dag_id: interlock_ok, outputs_from: [screen],
               conf: {customer: c-7}}
      risk:
        uses: dagster
        needs: [sanctions]
        with:
          system: dagster/test
          job: interlock_ok_job
          run_config: {ops: {extract: {config: {rows: "{{ nodes.sanctions.outputs.hits }}"}}}}
      file_report:
        uses: script
        needs: [risk]
        with:
          command: "echo score=$SCORE >> $INTERLOCK_OUTPUT; echo trace=$TRACEPARENT >> $INTERLOCK_OUTPUT"
          env: {SCORE: "{{ nodes.risk.outputs.score }}"}
"""


def test_airflow_then_dagster_then_script_share_one_trace(
        airflow_server: AirflowServer, dagster_server: DagsterServer, sqlite_store: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "systems.yaml").write_text(dedent(f"""
        systems:
          airflow/test: {{url: "{airflow_server.url}", events_secret: {{env: {SECRET_ENV}}}}}
          dagster/test: {{url: "{dagster_server.url}"}}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(tmp_path / "systems.yaml"))
    monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        detail = wait_run(start(FLOW, dispatcher), timeout=300)
    finally:
        dispatcher.close()
    assert detail.state.value == "succeeded", [(n.id, n.error) for n in detail.nodes]
    sanctions, risk, report = (node(detail, n) for n in ("sanctions", "risk", "file_report"))
    assert risk.outputs["rows"] == sanctions.outputs["hits"] == 2  # context crossed over
    assert report.outputs["score"] == 0.42  # key=value outputs that spell a number are typed

    conf = airflow_server.dag_run("interlock_ok", sanctions.attempts[0].handle.external_id)
    tags = {t["key"]: t["value"]
            for t in dagster_server.run(risk.attempts[0].handle.external_id)["tags"]}
    trace_ids = {conf["conf"]["interlock"]["traceparent"].split("-")[1],
                 tags["interlock/traceparent"].split("-")[1],
                 report.outputs["trace"].split("-")[1]}
    assert trace_ids == {detail.trace_id}
