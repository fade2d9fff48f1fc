"""A trigger's `inputs:`: the data of what fired a run becomes its inputs. An upstream
flow's node outputs, an Airflow DAG run's `conf` (pushed by the listener, signed), a
webhook's body; what cannot be mapped refuses the firing and says which input and why;
flow files that map from anything but `trigger` are refused before they run."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient warns about the test tool
    from fastapi.testclient import TestClient

from helpers import bearer, wait_run

from interlock.adapters import signing
from interlock.api.main import create_app
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.errors import SpecError
from interlock.operations import runs as ops
from interlock.spec.loader import parse_flow
from interlock.store import audit
from interlock.store.db import session_scope
from interlock.store.runs import RunFilter
from interlock.store.tables import AuditRecord, ExternalRun

API = "/api/v1"
NS = "tests.mapped"
SECRET = "test-secret-" + uuid.uuid4().hex

UPSTREAM = dedent(f"""
    id: extract
    namespace: {NS}
    nodes:
      count: {{uses: noop, with: {{rows: 1200, day: "2026-11-30"}}}}
""").lstrip()
DOWNSTREAM = dedent(f"""
    id: load
    namespace: {NS}
    inputs:
      rows: {{type: integer, required: true}}
      day: {{type: string, required: true}}
      source: {{type: string, default: none}}
    triggers:
      - after: {{flow: extract, state: success}}
        inputs:
          rows: "{{{{ trigger.nodes.count.outputs.rows }}}}"
          day: "{{{{ trigger.nodes.count.outputs.day }}}}"
          source: "{{{{ trigger.job_id }}}} run {{{{ trigger.external_id }}}}"
    nodes:
      step: {{uses: noop, with: {{n: "{{{{ inputs.rows }}}}"}}}}
""").lstrip()
ON_DAG = dedent(f"""
    id: on-dag
    namespace: {NS}
    inputs:
      day: {{type: string, required: true}}
      region: {{type: string, required: true}}
    triggers:
      - after: {{system: airflow/test, dag_id: ingest, state: success}}
        inputs:
          day: "{{{{ trigger.details.conf.day }}}}"
          region: "{{{{ trigger.details.conf.region | upper }}}}"
    nodes:
      report: {{uses: noop, with: {{day: "{{{{ inputs.day }}}}"}}}}
""").lstrip()
ON_HOOK = dedent(f"""
    id: on-hook
    namespace: {NS}
    inputs:
      order_id: {{type: integer, required: true}}
      customer: {{type: string, required: true}}
    triggers:
      - webhook: {{key: new-order}}
        inputs:
          order_id: "{{{{ trigger.body.order.id }}}}"
          customer: "{{{{ trigger.body.order.customer.name }}}}"
    nodes:
      ack: {{uses: noop, with: {{customer: "{{{{ inputs.customer }}}}"}}}}
""").lstrip()


def _runs_of(flow_id: str) -> list[str]:
    return [r.id for r in ops.list_runs(filters=RunFilter(namespace=NS, flow_id=flow_id)).runs]


def _one_run_of(flow_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (runs := _runs_of(flow_id)):
        assert time.monotonic() < deadline, f"no run of {flow_id}"
        time.sleep(0.05)
    assert len(runs) == 1, runs
    return runs[0]


def _refusals() -> list[dict[str, Any]]:
    with session_scope() as session:
        return [r.after for r in session.scalars(select(AuditRecord).where(
            AuditRecord.action == audit.Action.TRIGGER_REFUSED.value).order_by(
            AuditRecord.seq))]


def test_an_upstream_flows_outputs_become_the_triggered_runs_inputs(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(UPSTREAM)
    ops.register(DOWNSTREAM)
    up = ops.start_run(namespace=NS, flow_id="extract", inputs={}, dispatcher=embedded)
    assert wait_run(up).state.value == "succeeded"
    down = ops.get_run(_one_run_of("load"))
    assert down.inputs == {"rows": 1200, "day": "2026-11-30",
                           "source": f"{NS}/extract run {up}"}
    assert wait_run(down.id).state.value == "succeeded"
    # The run's trigger records what fired it, not the upstream's outputs again.
    assert "nodes" not in down.trigger and down.trigger["external_id"] == up


def test_what_cannot_be_mapped_refuses_the_firing_and_names_the_input(
        embedded: EmbeddedDispatcher) -> None:
    ops.register(UPSTREAM.replace("rows: 1200, ", ""))  # the output `rows` is gone
    ops.register(DOWNSTREAM)
    up = ops.start_run(namespace=NS, flow_id="extract", inputs={}, dispatcher=embedded)
    assert wait_run(up).state.value == "succeeded"
    time.sleep(0.5)
    assert _runs_of("load") == []
    (refused,) = _refusals()
    assert list(refused["problems"]) == ["rows"]
    assert "not mapped from what fired the run" in refused["problems"]["rows"]
    assert "rows" in refused["problems"]["rows"]  # Jinja names the missing attribute


@pytest.fixture
def client(embedded: EmbeddedDispatcher, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    systems = tmp_path / "systems.yaml"
    systems.write_text(dedent("""
        systems:
          airflow/test:
            url: http://127.0.0.1:9
            events_secret: {env: TEST_EVENTS_SECRET}
    """))
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(systems))
    monkeypatch.setenv("TEST_EVENTS_SECRET", SECRET)
    with TestClient(create_app(dispatcher=embedded)) as c:
        c.headers.update(bearer())
        for source in (ON_DAG, ON_HOOK):
            assert c.post(f"{API}/flows", json={"source": source}).status_code == 201
        yield c


def _dag_run(conf: dict[str, Any], run_id: str) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "system": "airflow/test", "kind": "dag_run",
            "state": "success", "dag_id": "ingest", "run_id": run_id,
            "run_type": "scheduled", "start_date": "2026-11-30T06:00:00+00:00",
            "end_date": "2026-11-30T06:01:00+00:00", "conf": conf}


def _push(client: TestClient, payload: dict[str, Any]) -> Any:
    body = json.dumps(payload).encode()
    return client.post(f"{API}/events/airflow", content=body, headers={
        "Content-Type": "application/json", **signing.sign(SECRET, body)})


def test_an_airflow_dag_runs_conf_becomes_the_inputs(client: TestClient) -> None:
    pushed = _push(client, _dag_run({"day": "2026-11-30", "region": "emea"}, "r1"))
    assert pushed.status_code == 202, pushed.text
    (run_id,) = pushed.json()["triggered_runs"]
    run = client.get(f"{API}/runs/{run_id}").json()
    assert run["inputs"] == {"day": "2026-11-30", "region": "EMEA"}
    assert wait_run(run_id).state == "succeeded"
    # A conf without `region`: nothing starts, the refusal says which input and why.
    assert _push(client, _dag_run({"day": "2026-12-01"}, "r2")).json()["triggered_runs"] == []
    (refused,) = _refusals()
    assert list(refused["problems"]) == ["region"]


def test_a_huge_conf_value_is_kept_as_its_fact_and_refused_as_an_input(
        client: TestClient) -> None:
    conf = {"day": "x" * 20_000, "region": "emea"}
    assert _push(client, _dag_run(conf, "huge")).json()["triggered_runs"] == []
    with session_scope() as session:
        row = session.scalar(select(ExternalRun).where(ExternalRun.external_id == "huge"))
        assert row is not None
        assert set(row.details["conf"]["day"]) == {"sha256", "bytes"}  # not the 20 KB
        assert row.details["conf"]["region"] == "emea"
    (refused,) = _refusals()
    assert list(refused["problems"]) == ["day"]  # its fact is no string


def test_a_webhooks_body_is_mapped_and_values_stay_data(client: TestClient) -> None:
    hook = f"{API}/webhooks/{NS}/on-hook/new-order"
    body = {"order": {"id": 7, "customer": {"name": "{{ 7*7 }} $(id) '; rm -rf /"}}}
    resp = client.post(hook, json=body)
    assert resp.status_code == 201, resp.text
    run = resp.json()  # the run started, as GET /runs/{id} shows it
    # Mapped once: a value that looks like an expression or a shell word is text.
    assert run["inputs"] == {"order_id": 7, "customer": "{{ 7*7 }} $(id) '; rm -rf /"}
    missing = client.post(hook, json={"order": {"id": "seven"}})
    assert missing.status_code == 422
    problems = {p["input"]: p["message"] for p in missing.json()["problems"]}
    assert set(problems) == {"customer"}  # reported first: it cannot be mapped at all
    wrong_type = client.post(hook, json={"order": {"id": "seven", "customer": {"name": "a"}}})
    assert wrong_type.status_code == 422
    assert [p["input"] for p in wrong_type.json()["problems"]] == ["order_id"]


@pytest.mark.parametrize(("mapping", "said"), [
    ('{undeclared: "{{ trigger.job_id }}"}', "input `undeclared` is not declared"),
    ('{day: "{{ inputs.day }}"}', "`inputs` cannot be used here"),
    ('{day: "{{ nodes.a.outputs.x }}"}', "`nodes` cannot be used here"),
    ("{day: \"{{ secret('TOKEN') }}\"}", "secrets are for nodes' `with:`"),
    ('{day: "{{ trigger.job_id "}', "cannot parse"),
])
def test_a_mapping_from_anything_but_the_trigger_is_refused_with_its_place(
        mapping: str, said: str) -> None:
    source = dedent(f"""
        id: bad
        namespace: {NS}
        inputs: {{day: {{type: string, required: true}}}}
        triggers:
          - schedule: {{cron: "0 6 * * *"}}
            inputs: {mapping}
        nodes:
          a: {{uses: noop}}
    """).lstrip()
    with pytest.raises(SpecError) as caught:
        parse_flow(source)
    (problem,) = caught.value.problems
    assert said in problem.message and problem.line == 6, problem
