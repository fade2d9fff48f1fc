"""A secret handed to a real Airflow DAG (in its conf) comes back in XCom, in the task log
and in the failure: Interlock masks it in the node's outputs and error, in the log it
serves, and keeps it out of every table and the audit trail."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import pytest
from airflow_flows import SECRET_ENV, node, start, write_systems
from airflow_harness import AirflowServer
from helpers import bearer, wait_run
from sqlalchemy import MetaData, Table, create_engine, inspect, select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from interlock.adapters.masking import MASK
from interlock.api.main import create_app
from interlock.audit.query import AuditFilter, export_lines
from interlock.config.env import settings
from interlock.dispatch.embedded import EmbeddedDispatcher
from interlock.operations.runtime import periodic_jobs

pytestmark = pytest.mark.timeout(600)

TOKEN_VAR = "ILK_AIRFLOW_TOKEN"
TOKEN = "af-T0ken/with+chars&more"
FLOW = f"""
    id: secret-dag
    namespace: tests.secrets
    nodes:
      call:
        uses: airflow
        with:
          system: airflow/test
          dag_id: interlock_secret
          conf: {{token: "{{{{ secret('{TOKEN_VAR}') }}}}"}}
          outputs_from: [leak]
"""


def test_what_airflow_returns_is_masked_and_nothing_keeps_the_secret(
        airflow_server: AirflowServer, sqlite_store: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLOCK_SYSTEMS", str(write_systems(tmp_path, airflow_server)))
    monkeypatch.setenv(SECRET_ENV, airflow_server.events_secret)
    monkeypatch.setenv(TOKEN_VAR, TOKEN)
    dispatcher = EmbeddedDispatcher(jobs=periodic_jobs())
    try:
        run_id = start(FLOW, dispatcher)
        detail = wait_run(run_id, timeout=180)
        call = node(detail, "call")
        assert call.state.value == "failed", detail
        dag_run = call.attempts[0].handle.external_id
        # Airflow got the value itself: the reference was resolved at submit
        assert airflow_server.dag_run("interlock_secret", dag_run)["conf"]["token"] == TOKEN
        with TestClient(create_app(dispatcher=dispatcher)) as client:
            client.headers.update(bearer())
            answers = [client.get(f"/api/v1/runs/{run_id}{p}") for p in ("", "/events", "/trace")]
            log = client.get(f"/api/v1/runs/{run_id}/nodes/call/logs")
        assert all(a.status_code == 200 for a in [*answers, log])
        # the failed task's log, served through the API: the exception quotes the token
        assert f"the API refused token {MASK}" in log.json()["text"]
    finally:
        dispatcher.close()
    haystack = "\n".join([*(a.text for a in answers), log.text, *export_lines(AuditFilter()),
                          _dump(sqlite_store)])
    leaks = [form for form in (TOKEN, base64.b64encode(TOKEN.encode()).decode(),
                               json.dumps(TOKEN)[1:-1]) if form in haystack]
    assert leaks == []
    files = [p for p in settings().home.rglob("*") if p.is_file() and p.suffix != ".db"]
    assert not [p for p in files if TOKEN.encode() in p.read_bytes()]


def _dump(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            meta = MetaData()
            return "\n".join(json.dumps(list(row), default=str)
                             for name in inspect(conn).get_table_names()
                             for row in conn.execute(select(Table(name, meta,
                                                                  autoload_with=conn))))
    finally:
        engine.dispose()
